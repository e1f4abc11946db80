#pragma once

// The tape: a per-thread list of op records in execution order. Backward is a
// reverse sweep over it; no graph sort is needed because an op's inputs were
// always recorded before the op itself.
//
// Lifetime. A record holds its inputs (strong references) and, when the VJP
// needs it, the output's storage. A tensor points back at the record that
// produced it by index. A record is
//   - recorded: holding values, ready for backward;
//   - released: backward ran through it and dropped its values, but its
//     output tensor is still alive (a second backward through it throws);
//   - dead: its output tensor was destroyed, so no later backward can reach
//     it. Dead records are popped from the end of the tape, and the tape is
//     compacted when they pile up below live ones.
// Record contents are released in an explicit loop rather than from nested
// destructors, so a chain of 100,000 records does not overflow the stack.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "xgrad/op.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::detail {

/// A list that stores up to three elements inline, so recording an op
/// allocates nothing for its inputs. (xt::svector does not run the
/// destructors of its elements, so it cannot hold shared pointers or shapes.)
template <class T>
class SmallList {
public:
    std::size_t size() const { return size_; }
    const T& operator[](std::size_t i) const { return data()[i]; }
    const T* begin() const { return data(); }
    const T* end() const { return data() + size_; }

    template <class Range, class Convert>
    void assign(const Range& range, Convert convert) {
        clear();
        const std::size_t n = static_cast<std::size_t>(std::end(range) - std::begin(range));
        if (n > inline_.size()) {
            overflow_.reserve(n);
            for (const auto& element : range) {
                overflow_.push_back(convert(element));
            }
        } else {
            std::size_t i = 0;
            for (const auto& element : range) {
                inline_[i++] = convert(element);
            }
        }
        size_ = n;
    }

    void clear() {
        for (T& element : inline_) {
            element = T();
        }
        overflow_.clear();
        size_ = 0;
    }

private:
    const T* data() const { return size_ > inline_.size() ? overflow_.data() : inline_.data(); }

    std::array<T, 3> inline_;
    std::vector<T> overflow_;
    std::size_t size_ = 0;
};

using InputList = SmallList<std::shared_ptr<TensorImpl>>;

struct Record {
    enum class State : std::uint8_t { recorded, released, dead };

    const OpDef* op = nullptr;
    OpAttrs attrs;
    InputList inputs;
    SmallList<Shape> input_shapes;                  ///< shapes when recorded
    xt::svector<std::uint64_t, 3> input_versions;  ///< storage versions when recorded
    std::shared_ptr<Storage> output;                ///< kept only when the VJP reads it
    std::uint64_t output_version = 0;
    TensorImpl* output_impl = nullptr;  ///< the tensor this record produced, while alive
    Array grad;                         ///< gradient of the output, summed during a sweep
    State state = State::recorded;
};

class Tape {
public:
    Tape() = default;
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;
    ~Tape();

    /// Appends a record for an op call whose output is `output`.
    void append(const OpDef& op, const OpAttrs& attrs, std::span<const Tensor* const> inputs,
                TensorImpl& output);

    /// Runs the reverse sweep from `root` with `seed` as its gradient.
    void backward(TensorImpl& root, Array seed, bool retain_graph);

    /// Called by a tensor produced by record `index` when it is destroyed.
    void on_output_destroyed(std::size_t index);

    std::size_t size() const { return records_.size(); }
    const Record& record(std::size_t index) const { return records_[index]; }
    std::size_t live_records() const;

private:
    void run_vjp(Record& record);
    void release(Record& record);
    void collect();
    void compact();

    std::vector<Record> records_;
    std::vector<Array> grad_scratch_;   ///< input gradients of the record in run_vjp
    std::vector<std::size_t> pending_;  ///< records whose output died, not yet released
    std::size_t dead_ = 0;              ///< dead records still stored
    bool collecting_ = false;
    bool sweeping_ = false;
};

/// This thread's tape.
Tape& current_tape();

/// True while capture() runs on this thread: every op is recorded, whether or
/// not its inputs require grad, so that the graph sees the whole computation.
bool is_capturing();

/// Turns capture mode on for this thread until destroyed.
class CaptureGuard {
public:
    CaptureGuard();
    ~CaptureGuard();
    CaptureGuard(const CaptureGuard&) = delete;
    CaptureGuard& operator=(const CaptureGuard&) = delete;

private:
    bool previous_;
};

/// The ops recorded on the way to `output`, newest first: every record that
/// a backward from `output` would visit.
std::vector<const OpDef*> recorded_history(const Tensor& output);

}  // namespace xgrad::detail

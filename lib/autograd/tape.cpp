#include "autograd/tape.hpp"

#include "autograd/anomaly.hpp"

#include <algorithm>
#include <string>

#include "xgrad/autograd.hpp"

namespace xgrad::detail {

namespace {

thread_local bool grad_enabled = true;
thread_local bool capturing = false;

[[noreturn]] void throw_released(const Record& record) {
    throw autograd_error(std::string("backward: the tape record of '") + record.op->info.name +
                         "' was already released by an earlier backward(); pass "
                         "retain_graph = true to the first backward() to run backward twice");
}

[[noreturn]] void throw_modified(const Record& record, const std::string& what,
                                 std::uint64_t recorded, std::uint64_t now) {
    throw autograd_error(std::string(record.op->info.name) + ": " + what +
                         " was modified in place after the op was recorded (version " +
                         std::to_string(now) + ", recorded at version " +
                         std::to_string(recorded) +
                         "), and backward needs its old values; change it after backward(), "
                         "or change a clone()");
}

void check_gradient(const Record& record, std::size_t input, const Array& grad,
                    const Array& input_values) {
    const char* op = record.op->info.name;
    if (grad.empty()) {
        throw std::logic_error(std::string(op) + ": the VJP did not set the gradient of input " +
                               std::to_string(input));
    }
    if (grad.dtype() != input_values.dtype() || grad.shape() != input_values.shape()) {
        throw shape_error(std::string(op) + ": the VJP returned a gradient of shape " +
                          shape_string(grad.shape()) + " and dtype " + dtype_name(grad.dtype()) +
                          " for input " + std::to_string(input) + " of shape " +
                          shape_string(input_values.shape()) + " and dtype " +
                          dtype_name(input_values.dtype()));
    }
}

void accumulate_leaf_grad(TensorImpl& leaf, Array&& grad) {
    if (!leaf.grad.defined()) {
        leaf.grad = Tensor(std::move(grad));
        return;
    }
    Storage& target = leaf.grad.storage();
    target.values.accumulate(std::move(grad));
    ++target.version;
}

}  // namespace

Tape::~Tape() {
    // Tensors that outlive their thread's tape lose their history: they
    // become plain tensors that do not require grad, so a later backward()
    // through them throws instead of silently skipping their inputs.
    for (Record& record : records_) {
        if (record.output_impl != nullptr) {
            record.output_impl->tape = nullptr;
            record.output_impl->requires_grad = false;
        }
    }
    collecting_ = true;
    records_.clear();
}

bool is_capturing() { return capturing; }

CaptureGuard::CaptureGuard() : previous_(capturing) { capturing = true; }

CaptureGuard::~CaptureGuard() { capturing = previous_; }

Tape& current_tape() {
    thread_local Tape tape;
    return tape;
}

void Tape::append(const OpDef& op, const OpAttrs& attrs, std::span<const Tensor* const> inputs,
                  TensorImpl& output) {
    Record& record = records_.emplace_back();
    record.op = &op;
    record.attrs = attrs;
    record.inputs.assign(inputs, [](const Tensor* input) { return input->impl(); });
    record.input_shapes.assign(inputs, [](const Tensor* input) { return input->shape(); });
    for (const Tensor* input : inputs) {
        record.input_versions.push_back(input->impl()->storage->version);
    }
    if (op.info.saves_output) {
        record.output = output.storage;
        record.output_version = output.storage->version;
    }
    record.output_impl = &output;
    output.tape = this;
    output.record = records_.size() - 1;
}

void Tape::backward(TensorImpl& root, Array seed, bool retain_graph) {
    if (sweeping_) {
        throw not_implemented(
            "backward: called from inside a VJP; higher-order gradients are not supported");
    }
    const std::size_t top = root.record;
    if (records_[top].state != Record::State::recorded) {
        throw_released(records_[top]);
    }
    if (anomaly_enabled() && has_non_finite(seed)) {
        throw anomaly_error(std::string("backward: the seed gradient passed to backward() for '") +
                            records_[top].op->info.name + "' contains NaN or infinity");
    }
    records_[top].grad.accumulate(std::move(seed));

    NoGradGuard no_grad;
    sweeping_ = true;
    try {
        for (std::size_t i = top + 1; i-- > 0;) {
            Record& record = records_[i];
            if (record.grad.empty()) {
                continue;
            }
            if (record.state == Record::State::released) {
                throw_released(record);
            }
            run_vjp(record);
            record.grad.reset();
            if (!retain_graph) {
                release(record);
            }
        }
    } catch (...) {
        for (std::size_t i = 0; i <= top && i < records_.size(); ++i) {
            records_[i].grad.reset();
        }
        sweeping_ = false;
        collect();
        throw;
    }
    sweeping_ = false;
    collect();
}

void Tape::run_vjp(Record& record) {
    const OpInfo& info = record.op->info;
    const std::size_t n = record.inputs.size();
    if (record.op->vjp == nullptr) {
        return;  // a non-differentiable op, recorded only for capture()
    }

    xt::svector<const Array*, 4> input_values;
    for (std::size_t i = 0; i < n; ++i) {
        const Storage& storage = *record.inputs[i]->storage;
        if (storage.values.shape() != record.input_shapes[i]) {
            throw autograd_error(std::string(info.name) + ": input " + std::to_string(i) +
                                 " changed shape from " + shape_string(record.input_shapes[i]) +
                                 " to " + shape_string(storage.values.shape()) +
                                 " after the op was recorded; backward needs the recorded shape");
        }
        const bool saved = i < 32 && (info.saved_inputs >> i & 1u);
        if (saved && storage.version != record.input_versions[i]) {
            throw_modified(record, "input " + std::to_string(i), record.input_versions[i],
                           storage.version);
        }
        input_values.push_back(&storage.values);
    }
    if (record.output && record.output->version != record.output_version) {
        throw_modified(record, "its output", record.output_version, record.output->version);
    }

    // Reused between records; run_vjp is never re-entered.
    std::vector<Array>& grads = grad_scratch_;
    grads.clear();
    grads.resize(n);
    xt::svector<Array*, 4> slots(n, nullptr);
    bool any_needed = false;
    for (std::size_t i = 0; i < n; ++i) {
        if (record.inputs[i]->requires_grad) {
            slots[i] = &grads[i];
            any_needed = true;
        }
    }
    if (!any_needed) {
        return;
    }

    const Array* output = record.output ? &record.output->values : nullptr;
    VjpArgs args(info.name, input_values, record.attrs, output, record.grad, slots);
    record.op->vjp(args);

    for (std::size_t i = 0; i < n; ++i) {
        if (slots[i] == nullptr) {
            continue;
        }
        check_gradient(record, i, grads[i], *input_values[i]);
        if (anomaly_enabled() && has_non_finite(grads[i])) {
            throw anomaly_error(std::string("backward: the VJP of '") + info.name + "' (tape record " +
                                std::to_string(&record - records_.data()) + ") returned NaN or infinity " +
                                "in the gradient of input " + std::to_string(i) + "; input shapes " +
                                shapes_string(input_values));
        }
        TensorImpl& input = *record.inputs[i];
        if (input.tape == this) {
            records_[input.record].grad.accumulate(std::move(grads[i]));
        } else {
            accumulate_leaf_grad(input, std::move(grads[i]));
        }
    }
}

void Tape::release(Record& record) {
    record.state = Record::State::released;
    record.output.reset();
    // Destroying the inputs may destroy tensors produced by earlier records;
    // their destructors only queue those records (see collect()).
    InputList inputs = std::move(record.inputs);
    record.inputs.clear();
    record.input_shapes.clear();
    record.input_versions.clear();
}

void Tape::on_output_destroyed(std::size_t index) {
    records_[index].output_impl = nullptr;
    pending_.push_back(index);
    collect();
}

void Tape::collect() {
    if (collecting_ || sweeping_) {
        return;
    }
    collecting_ = true;
    while (!pending_.empty()) {
        const std::size_t index = pending_.back();
        pending_.pop_back();
        Record& record = records_[index];
        release(record);  // may append to pending_
        record.state = Record::State::dead;
        ++dead_;
    }
    while (!records_.empty() && records_.back().state == Record::State::dead) {
        records_.pop_back();
        --dead_;
    }
    // Dead records below a live one cannot be popped. Compacting once they
    // make up half of the tape keeps it from growing when a tensor (the last
    // loss, say) is kept across training steps.
    if (dead_ > 64 && 2 * dead_ > records_.size()) {
        compact();
    }
    collecting_ = false;
}

void Tape::compact() {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < records_.size(); ++i) {
        if (records_[i].state == Record::State::dead) {
            continue;
        }
        if (kept != i) {
            records_[kept] = std::move(records_[i]);
        }
        if (records_[kept].output_impl != nullptr) {
            records_[kept].output_impl->record = kept;
        }
        ++kept;
    }
    records_.erase(records_.begin() + static_cast<std::ptrdiff_t>(kept), records_.end());
    dead_ = 0;
}

std::size_t Tape::live_records() const {
    return static_cast<std::size_t>(std::count_if(
        records_.begin(), records_.end(),
        [](const Record& record) { return record.state == Record::State::recorded; }));
}

std::vector<const OpDef*> recorded_history(const Tensor& output) {
    std::vector<const OpDef*> ops;
    const TensorImpl& root = *output.impl();
    if (root.tape == nullptr) {
        return ops;
    }
    const Tape& tape = *root.tape;
    // Reverse sweep with a reachability mark per record, as backward does.
    std::vector<bool> reached(root.record + 1, false);
    reached[root.record] = true;
    for (std::size_t i = root.record + 1; i-- > 0;) {
        if (!reached[i]) {
            continue;
        }
        const Record& record = tape.record(i);
        ops.push_back(record.op);
        for (const auto& input : record.inputs) {
            if (input->tape == &tape) {
                reached[input->record] = true;
            }
        }
    }
    return ops;
}

}  // namespace xgrad::detail

namespace xgrad {

bool is_grad_enabled() { return detail::grad_enabled; }

void set_grad_enabled(bool enabled) { detail::grad_enabled = enabled; }

std::size_t live_tape_records() { return detail::current_tape().live_records(); }

std::size_t tape_size() { return detail::current_tape().size(); }

}  // namespace xgrad

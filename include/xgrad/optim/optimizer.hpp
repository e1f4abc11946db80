#pragma once

// Optimizer: the base class of xgrad's first-order optimizers (SGD, Adam,
// AdamW, RMSprop, Adagrad), modelled on PyTorch's torch.optim.Optimizer.
//
// An optimizer keeps its parameters in groups. Each group has its own
// learning rate and weight decay, which schedulers and training loops may
// change between steps. Every parameter has its own state: a step count and
// the buffers of its optimizer, such as Adam's moment estimates. The buffers
// are created at the parameter's first step with a gradient and updated in
// place after that, so step() allocates no memory once every parameter has
// taken a step.
//
// Parameters are numbered across groups in the order given, starting with
// group 0. The names in state_dict() and the error messages refer to a
// parameter by that index.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::optim {

/// Parameters that share a learning rate and weight decay, as passed to an
/// optimizer's constructor. An unset override takes its value from the
/// optimizer's options.
struct ParamGroup {
    std::vector<Tensor> params;
    std::optional<double> lr = std::nullopt;
    std::optional<double> weight_decay = std::nullopt;
};

/// Named tensors of a checkpoint, in the order that Optimizer::state_dict() documents.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
public:
    /// A parameter group as the optimizer stores it, with both overrides
    /// resolved. `lr` and `weight_decay` may be changed between steps (the
    /// schedulers in scheduler.hpp change `lr`). Adding or removing `params`
    /// here makes step() throw, because the state is indexed by parameter.
    struct Group {
        std::vector<Tensor> params;
        double lr = 0.0;
        double weight_decay = 0.0;
    };

    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    /// Updates every parameter that has a gradient, in place and with grad
    /// mode off. A parameter without a gradient keeps its values, its state
    /// and its step count, as in PyTorch.
    ///
    /// Throws value_error when a group's lr or weight_decay is negative or not
    /// finite, and shape_error when a gradient or a state buffer no longer has
    /// its parameter's shape and dtype. Every check runs before the first
    /// update, so a step that throws changes nothing.
    void step();

    /// Drops every parameter's gradient, as PyTorch's
    /// zero_grad(set_to_none=True). The next step() then skips the parameters
    /// that the next backward() does not reach.
    void zero_grad();

    /// Appends a parameter group. Its parameters get the next indices, so the
    /// state_dict() names of the parameters already present stay the same.
    /// Throws value_error like the constructor.
    void add_param_group(ParamGroup group);

    std::vector<Group>& param_groups() { return groups_; }
    const std::vector<Group>& param_groups() const { return groups_; }

    /// Every parameter in index order: group 0 first, each group in the order
    /// given.
    std::vector<Tensor> parameters() const;

    /// A snapshot of the hyperparameters and state, as (name, tensor) pairs
    /// that are deep copies, in this order:
    ///
    ///   param_groups.<g>.lr            float64, shape ()
    ///   param_groups.<g>.weight_decay  float64, shape ()
    ///   state.<i>.step                 int64, shape ()
    ///   state.<i>.<buffer>             the parameter's shape and dtype
    ///
    /// for each group g and each parameter i that has state, that is, one
    /// that has taken a step since construction or had state loaded. The
    /// buffer names are PyTorch's: momentum_buffer (SGD), exp_avg,
    /// exp_avg_sq and max_exp_avg_sq (Adam, AdamW), square_avg,
    /// momentum_buffer and grad_avg (RMSprop), and sum (Adagrad). A buffer
    /// that the options do not use (max_exp_avg_sq without amsgrad) is not
    /// stored.
    StateDict state_dict() const;

    /// Replaces the group hyperparameters and every parameter's state with
    /// copies of the entries of `state`, which must contain the names that
    /// state_dict() of an optimizer of this type, options and parameter shapes
    /// produces. A parameter without state entries gets no state, so its next
    /// step is its first.
    ///
    /// Throws value_error listing every problem: an unexpected, duplicate or
    /// missing name, an undefined tensor, a shape or dtype that differs from
    /// the expected one, a negative or non-finite lr or weight_decay, and a
    /// negative step count. When it throws, nothing has changed.
    void load_state_dict(const StateDict& state);

    /// Sets to zero every state entry of `param` where `mask` is zero: its
    /// momentum and moment estimates there. Pruning calls it after zeroing the
    /// pruned weights, so that stale state cannot move them again: with a
    /// zero weight, zero state and zero gradient, every optimizer here leaves
    /// the weight at exactly zero. `mask` has the parameter's shape and dtype.
    /// Throws value_error when `param` is not one of this optimizer's
    /// parameters; a parameter without state is left as it is.
    void mask_state(const Tensor& param, const Tensor& mask);

    /// The optimizer's class name ("SGD", "Adam", ...), which starts every
    /// message it throws.
    const std::string& name() const { return name_; }

    /// Prints the class name and options, as in
    /// `SGD(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=false)`.
    friend std::ostream& operator<<(std::ostream& out, const Optimizer& optimizer);

protected:
    /// State of one parameter.
    struct ParamState {
        /// False until the parameter's first step with a gradient, or until
        /// load_state_dict() gives it state.
        bool initialized = false;

        /// Number of steps taken, counting the one in progress during update().
        std::int64_t step = 0;

        /// One tensor per buffer_names() entry, of the parameter's shape and dtype.
        std::vector<Tensor> buffers;
    };

    /// Checks every parameter and resolves each group's overrides against
    /// `default_lr` and `default_weight_decay`, which the subclass has
    /// validated. Throws value_error, naming the optimizer and the parameter's
    /// index, for a parameter that is undefined, not float32 or float64, not
    /// requiring grad, not a leaf, or repeated. Also throws value_error for an
    /// empty parameter list and for an override that is negative or not finite.
    Optimizer(std::string name, std::vector<ParamGroup> groups, double default_lr,
              double default_weight_decay);

    /// Names of the state buffers for the current options, in the order of
    /// ParamState::buffers.
    virtual std::vector<std::string> buffer_names() const = 0;

    /// The value a buffer starts with at a parameter's first step: 0 unless a
    /// subclass overrides it, as Adagrad does with initial_accumulator_value.
    virtual double initial_buffer_value(std::size_t buffer) const;

    /// Applies one update to `param`. `state.step` has already been increased
    /// to the number of this step, so it is 1 at the parameter's first step.
    virtual void update(const Group& group, Tensor& param, const Tensor& grad,
                        ParamState& state) = 0;

    /// Prints the options as `lr=0.1, momentum=0.9, ...`.
    virtual void print_options(std::ostream& out) const = 0;

private:
    void check_before_step() const;

    std::string name_;
    double default_lr_;
    double default_weight_decay_;
    std::vector<Group> groups_;
    std::vector<ParamState> states_;
};

namespace detail {

/// Formats a number in its shortest round-trip form ("0.001", "1e-08", "nan").
std::string format_number(double value);

/// Throws value_error "<context>: <name> must be <requirement>, got <value>"
/// unless `valid`. Optimizers, schedulers and the clipping functions check
/// their arguments with it.
void check_argument(const std::string& context, const std::string& name, double value, bool valid,
                    const char* requirement);

}  // namespace detail

}  // namespace xgrad::optim

#include "xgrad/optim/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace xgrad::optim {

namespace {

bool is_valid_factor(double value) {
    return std::isfinite(value) && value >= 0.0;
}

}  // namespace

LRScheduler::LRScheduler(Optimizer& optimizer, const char* name)
    : name_(name), optimizer_(optimizer) {
    for (const Optimizer::Group& group : optimizer_.param_groups()) {
        base_lrs_.push_back(group.lr);
    }
    last_lrs_ = base_lrs_;
}

void LRScheduler::step() {
    ++last_epoch_;
    apply();
}

void LRScheduler::apply() {
    std::vector<Optimizer::Group>& groups = optimizer_.param_groups();
    if (groups.size() != base_lrs_.size()) {
        throw value_error(std::string(name_) + ": the optimizer has " +
                          std::to_string(groups.size()) +
                          " param groups, but the scheduler was constructed with " +
                          std::to_string(base_lrs_.size()) +
                          "; construct the scheduler after adding every group");
    }
    for (std::size_t g = 0; g < groups.size(); ++g) {
        last_lrs_[g] = lr_at(base_lrs_[g], last_epoch_);
        groups[g].lr = last_lrs_[g];
    }
}

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
    detail::check_argument(name_, "step_size", static_cast<double>(step_size), step_size >= 1,
                           ">= 1");
    detail::check_argument(name_, "gamma", gamma, is_valid_factor(gamma), "finite and >= 0");
    apply();
}

double StepLR::lr_at(double base_lr, std::int64_t epoch) const {
    return base_lr * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma)
    : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
    detail::check_argument(name_, "gamma", gamma, is_valid_factor(gamma), "finite and >= 0");
    apply();
}

double ExponentialLR::lr_at(double base_lr, std::int64_t epoch) const {
    return base_lr * std::pow(gamma_, static_cast<double>(epoch));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), t_max_(t_max), eta_min_(eta_min) {
    detail::check_argument(name_, "t_max", static_cast<double>(t_max), t_max >= 1, ">= 1");
    detail::check_argument(name_, "eta_min", eta_min, is_valid_factor(eta_min), "finite and >= 0");
    apply();
}

double CosineAnnealingLR::lr_at(double base_lr, std::int64_t epoch) const {
    const double phase =
        std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(t_max_);
    return eta_min_ + (base_lr - eta_min_) * (1.0 + std::cos(phase)) / 2.0;
}

LinearWarmup::LinearWarmup(Optimizer& optimizer, double start_factor, double end_factor,
                           std::int64_t total_iters)
    : LRScheduler(optimizer, "LinearWarmup"),
      start_factor_(start_factor),
      end_factor_(end_factor),
      total_iters_(total_iters) {
    detail::check_argument(name_, "start_factor", start_factor,
                           start_factor > 0.0 && start_factor <= 1.0, "in (0, 1]");
    detail::check_argument(name_, "end_factor", end_factor, end_factor >= 0.0 && end_factor <= 1.0,
                           "in [0, 1]");
    detail::check_argument(name_, "total_iters", static_cast<double>(total_iters), total_iters >= 1,
                           ">= 1");
    apply();
}

double LinearWarmup::lr_at(double base_lr, std::int64_t epoch) const {
    const double progress =
        static_cast<double>(std::min(epoch, total_iters_)) / static_cast<double>(total_iters_);
    return base_lr * (start_factor_ + (end_factor_ - start_factor_) * progress);
}

}  // namespace xgrad::optim

#pragma once

// Grad mode and tape statistics.
//
// Each thread records onto its own tape. An op is recorded when grad mode is
// on and at least one of its inputs requires grad; its output then requires
// grad too. backward() sweeps the records in reverse and releases them.

#include <cstddef>

namespace xgrad {

/// True while ops are being recorded on this thread (the default).
bool is_grad_enabled();

/// Turns recording on or off for this thread.
void set_grad_enabled(bool enabled);

/// Turns recording off for this thread until the guard is destroyed, as in
/// evaluation loops and optimizer steps.
class NoGradGuard {
public:
    NoGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(false); }
    ~NoGradGuard() { set_grad_enabled(previous_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

/// True while anomaly detection is on for this thread (off by default).
bool is_anomaly_detection_enabled();

/// Turns anomaly detection on or off for this thread. While it is on, the
/// first op whose output contains a NaN or an infinity throws anomaly_error
/// naming the op, its input shapes and where it ran: its position among the
/// ops since detection was turned on, or its node in a replayed graph. In
/// backward(), the first VJP that returns a NaN or infinite gradient throws
/// likewise, naming the tape record. Every op's output and every gradient is
/// scanned, which costs time; off, it costs one flag test per op.
void set_anomaly_detection(bool enabled);

/// Turns anomaly detection on for this thread until destroyed.
class AnomalyModeGuard {
public:
    AnomalyModeGuard() : previous_(is_anomaly_detection_enabled()) { set_anomaly_detection(true); }
    ~AnomalyModeGuard() { set_anomaly_detection(previous_); }
    AnomalyModeGuard(const AnomalyModeGuard&) = delete;
    AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;

private:
    bool previous_;
};

/// Number of records on this thread's tape that still hold values: recorded
/// ops whose backward has not run and whose output is still referenced.
std::size_t live_tape_records();

/// Number of records stored on this thread's tape: the live ones plus
/// released or dead ones whose slots have not been reclaimed yet.
std::size_t tape_size();

/// Number of tensors alive in the process, on every thread.
std::size_t live_tensors();

}  // namespace xgrad

// Scheduling of the observability side's background threads (span export, payload delivery):
// they run at a lower priority than the threads that serve requests, so that on saturated CPUs
// requests keep their share and the bounded queues drop (and count) instead. Thread-safe.
#pragma once

namespace quiver::observe {

// How much nicer than the process the background threads are (Linux per-thread nice).
inline constexpr int kBackgroundNiceIncrement = 19;

// Makes the calling thread `increment` nicer than it is (at most 19). Best effort: a failure
// leaves the priority as it was.
void LowerCurrentThreadPriority(int increment = kBackgroundNiceIncrement);

}  // namespace quiver::observe

// Time, injected: production code asks a Clock; tests advance a ManualClock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wharf {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : now_ns_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint(TimePoint::duration(now_ns_.load())); }
  void advance(std::chrono::nanoseconds by) {
    now_ns_ += std::chrono::duration_cast<TimePoint::duration>(by).count();
  }

 private:
  std::atomic<TimePoint::duration::rep> now_ns_;
};

// Epoch seconds with millisecond precision, as AWS JSON protocols write timestamps.
double epoch_seconds(TimePoint t);
TimePoint from_epoch_seconds(double seconds);
// "2024-05-01T12:30:45.123Z": ISO 8601 in UTC to the millisecond (truncated), as EC2 writes
// timestamps.
std::string iso8601_millis(TimePoint t);
// `t` in UTC through strftime's `format` (at most 63 characters).
std::string utc_time(TimePoint t, const char* format);
// "20150830T123600Z", the form of X-Amz-Date.
std::string amz_date(TimePoint t);
// Parses "20150830T123600Z"; false when malformed.
bool parse_amz_date(const std::string& text, TimePoint& out);
// "Sun, 30 Aug 2015 12:36:00 GMT", the HTTP date (Date, Last-Modified, If-Modified-Since).
std::string http_date(TimePoint t);
// Parses an HTTP date (surrounding blanks allowed); nullopt when malformed.
std::optional<TimePoint> parse_http_date(std::string_view text);

}  // namespace wharf

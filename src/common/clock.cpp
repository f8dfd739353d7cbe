// Timestamp conversions for the wire formats.
#include "common/clock.hpp"

#include "common/text.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace wharf {

double epoch_seconds(TimePoint t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  return static_cast<double>(ms) / 1000.0;
}

TimePoint from_epoch_seconds(double seconds) {
  return TimePoint(std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000))));
}

std::string iso8601_millis(TimePoint t) {
  using namespace std::chrono;
  auto time = floor<milliseconds>(t);
  auto day = floor<days>(time);
  year_month_day date{day};
  hh_mm_ss clock{time - day};
  char buffer[40];
  int length = std::snprintf(
      buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
      static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
      static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
      static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return std::string(buffer, static_cast<std::size_t>(length));
}

std::string utc_time(TimePoint t, const char* format) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string amz_date(TimePoint t) {
  return utc_time(t, "%Y%m%dT%H%M%SZ");
}

bool parse_amz_date(const std::string& text, TimePoint& out) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return false;
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (end == nullptr || *end != '\0') return false;
  out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

std::string http_date(TimePoint t) {
  return utc_time(t, "%a, %d %b %Y %H:%M:%S GMT");
}

std::optional<TimePoint> parse_http_date(std::string_view text) {
  std::string copy(trim(text));
  std::tm tm{};
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace wharf

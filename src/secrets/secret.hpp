// A Secrets Manager secret and its versions: the in-memory record, how it is stored, and the
// Secrets Manager wire shapes it appears in.
#pragma once

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::secrets {

inline constexpr std::string_view kCurrentStage = "AWSCURRENT";
inline constexpr std::string_view kPreviousStage = "AWSPREVIOUS";

struct SecretVersion {
  std::string id;
  // Exactly one is set. The binary value is kept as the base64 text it travels as.
  std::optional<std::string> string_value;
  std::optional<std::string> binary_base64;
  std::vector<std::string> stages;
  TimePoint created;

  bool has_stage(std::string_view stage) const;
};

using SecretTags = std::vector<std::pair<std::string, std::string>>;

struct Secret {
  std::string arn;  // arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX
  std::string name;
  std::string description;
  std::string kms_key_id;
  SecretTags tags;
  TimePoint created;
  TimePoint last_changed;
  std::optional<TimePoint> last_accessed;  // a day, as AWS records it
  // Set while a deletion is scheduled: when DeleteSecret was called, and when the secret goes.
  std::optional<TimePoint> deleted;
  std::optional<TimePoint> deletion_date;
  std::vector<SecretVersion> versions;  // oldest first

  const SecretVersion* find_version(std::string_view id) const;
  const SecretVersion* find_stage(std::string_view stage) const;
  // Adds `version`, moving each of its stages off the version that had it. When AWSCURRENT
  // moves, the version that had it becomes AWSPREVIOUS. Versions left without a stage beyond the
  // most recent `kept_unstaged` are dropped, as AWS drops deprecated versions.
  void add_version(SecretVersion version);
};

// The store's JSON for a secret, and back.
std::string secret_to_store(const Secret& secret);
Result<Secret> secret_from_store(std::string_view text);

// Wire shapes (epoch-second dates, members absent when unset).
boost::json::object describe_to_wire(const Secret& secret);    // DescribeSecret's output
boost::json::object list_entry_to_wire(const Secret& secret);  // a SecretListEntry
boost::json::object value_to_wire(const Secret& secret, const SecretVersion& version);
boost::json::array tags_to_wire(const SecretTags& tags);

}  // namespace wharf::secrets

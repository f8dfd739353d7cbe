// A Parameter Store parameter and its versions: the in-memory record, its version and label
// rules, how it is stored, and the SSM wire shapes it appears in.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace wharf::ssm {

inline constexpr std::string_view kSecureString = "SecureString";
inline constexpr std::string_view kDefaultKeyId = "alias/aws/ssm";
inline constexpr std::size_t kMaxVersions = 100;
inline constexpr std::size_t kMaxLabelsPerVersion = 10;

// One version: AWS keeps each version's own type, key, description, pattern and tier.
struct ParameterVersion {
  std::int64_t version = 0;
  std::string value;
  std::string type;    // String, StringList or SecureString
  std::string key_id;  // SecureString only
  std::string description;
  std::string allowed_pattern;
  std::string tier;  // Standard or Advanced
  std::string data_type = "text";
  std::vector<std::string> labels;
  TimePoint modified;
  std::string modified_user;  // the caller's ARN

  bool has_label(std::string_view label) const;
};

using ParameterTags = std::vector<std::pair<std::string, std::string>>;

struct Parameter {
  std::string name;
  std::string arn;
  ParameterTags tags;
  std::vector<ParameterVersion> versions;  // oldest first; never empty once stored

  const ParameterVersion& latest() const { return versions.back(); }
  const ParameterVersion* find_version(std::int64_t version) const;
  const ParameterVersion* find_label(std::string_view label) const;
  // Adds the next version. With kMaxVersions kept, the oldest goes first, unless it carries a
  // label: then nothing changes and the error is ParameterMaxVersionLimitExceeded.
  Status add_version(ParameterVersion version);
  // Attaches `labels` to `version`, moving each off the version that had it, and returns the
  // labels that break the naming rules (left out). ParameterVersionLabelLimitExceeded when the
  // version would end with more than kMaxLabelsPerVersion labels; nothing changes then.
  Result<std::vector<std::string>> attach_labels(std::int64_t version,
                                                 const std::vector<std::string>& labels);
};

// The store's JSON for a parameter, and back.
std::string parameter_to_store(const Parameter& parameter);
Result<Parameter> parameter_from_store(std::string_view text);

// Wire shapes. A SecureString's value is shown only when `decrypt`; otherwise the Value is an
// opaque token (see shown_value).
boost::json::object parameter_to_wire(const Parameter& parameter, const ParameterVersion& version,
                                      std::string_view selector, bool decrypt);
boost::json::object metadata_to_wire(const Parameter& parameter);  // ParameterMetadata
boost::json::object history_to_wire(const Parameter& parameter, const ParameterVersion& version,
                                    bool decrypt);
boost::json::array tags_to_wire(const ParameterTags& tags);
// What a Value member shows: the value, or for a SecureString read without WithDecryption the
// base64 of "wharf:ssm:not-decrypted:ARN:VERSION". AWS sends the KMS ciphertext there; Wharf
// does not encrypt, so it sends a token that says so and carries nothing of the value.
std::string shown_value(const Parameter& parameter, const ParameterVersion& version, bool decrypt);

}  // namespace wharf::ssm

// Identifiers: request ids, task ids, generated access keys.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wharf {

// A random RFC 4122 version-4 UUID, lower case.
std::string new_uuid();
// 32 random lower-case hex characters, the shape of ECS task ids.
std::string new_hex_id();
// An access key id shaped like AWS's ("AKIA" + 16 upper-case alphanumerics).
std::string new_access_key_id();
// A 40-character secret access key.
std::string new_secret_access_key();
// `count` characters drawn from `alphabet` (at most 256 characters long).
std::string random_characters(std::string_view alphabet, std::size_t count);

}  // namespace wharf

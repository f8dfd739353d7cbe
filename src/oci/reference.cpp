// Reference parsing after distribution/reference's grammar and Docker's normalisation.
#include "oci/reference.hpp"

#include <cctype>

namespace wharf::oci {
namespace {

constexpr std::size_t kMaxNameLength = 255;
constexpr std::size_t kMaxTagLength = 128;

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool is_path_component(std::string_view component) {
  if (component.empty() || !is_lower_alnum(component.front()) ||
      !is_lower_alnum(component.back())) {
    return false;
  }
  std::size_t char_idx = 0;
  while (char_idx < component.size()) {
    if (is_lower_alnum(component[char_idx])) {
      ++char_idx;
      continue;
    }
    std::size_t separator_end = char_idx;
    while (separator_end < component.size() && !is_lower_alnum(component[separator_end])) {
      ++separator_end;
    }
    std::string_view separator = component.substr(char_idx, separator_end - char_idx);
    bool dashes = separator.find_first_not_of('-') == std::string_view::npos;
    if (separator != "." && separator != "_" && separator != "__" && !dashes) return false;
    char_idx = separator_end;
  }
  return true;
}

bool is_repository(std::string_view repository) {
  while (true) {
    auto slash = repository.find('/');
    if (!is_path_component(repository.substr(0, slash))) return false;
    if (slash == std::string_view::npos) return true;
    repository.remove_prefix(slash + 1);
  }
}

bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
}

// host[:port] where host is dot-separated labels or a bracketed IPv6 address.
bool is_registry(std::string_view registry) {
  std::string_view host = registry;
  std::string_view port;
  if (registry.starts_with('[')) {
    auto close = registry.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    std::string_view address = registry.substr(1, close - 1);
    if (address.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
      return false;
    }
    std::string_view rest = registry.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return false;
    host = {};
    port = rest.empty() ? rest : rest.substr(1);
    if (!rest.empty() && port.empty()) return false;
  } else if (auto colon = registry.find(':'); colon != std::string_view::npos) {
    host = registry.substr(0, colon);
    port = registry.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (!port.empty() &&
      (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)) {
    return false;
  }
  while (!host.empty()) {
    auto dot = host.find('.');
    std::string_view label = host.substr(0, dot);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!is_host_char(c)) return false;
    }
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
    if (host.empty()) return false;
  }
  return true;
}

bool is_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTagLength) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(tag.front())) return false;
  for (char c : tag) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool looks_like_registry(std::string_view component) {
  if (component == "localhost") return true;
  if (component.find_first_of(".:[") != std::string_view::npos) return true;
  for (char c : component) {
    if (std::isupper(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

}  // namespace

std::string Reference::manifest_reference() const {
  return digest ? digest->str() : tag;
}

std::string Reference::str() const {
  std::string text = registry + "/" + repository;
  if (!tag.empty()) text += ":" + tag;
  if (digest) text += "@" + digest->str();
  return text;
}

Reference Reference::with_tag(std::string_view new_tag) const {
  return Reference{registry, repository, std::string(new_tag), std::nullopt};
}

Reference Reference::with_digest(const Digest& new_digest) const {
  return Reference{registry, repository, tag, new_digest};
}

Result<Reference> parse_reference(std::string_view text) {
  auto refuse = [&](std::string_view why) {
    return invalid("image reference '" + std::string(text) + "' " + std::string(why));
  };
  if (text.empty()) return invalid("image reference is empty");
  Reference reference;
  std::string_view name = text;
  if (auto at = name.find('@'); at != std::string_view::npos) {
    auto digest = parse_digest(name.substr(at + 1));
    if (!digest)
      return std::unexpected(
          std::move(digest.error()).context("image reference '" + std::string(text) + "'"));
    reference.digest = *digest;
    name = name.substr(0, at);
  }
  auto last_slash = name.rfind('/');
  auto tag_colon = name.rfind(':');
  if (tag_colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || tag_colon > last_slash)) {
    reference.tag = std::string(name.substr(tag_colon + 1));
    if (!is_tag(reference.tag)) {
      return refuse(
          "has an invalid tag: use up to 128 letters, digits, '_', '.' and '-', not "
          "starting with '.' or '-'");
    }
    name = name.substr(0, tag_colon);
  }
  auto first_slash = name.find('/');
  if (first_slash != std::string_view::npos && looks_like_registry(name.substr(0, first_slash))) {
    reference.registry = std::string(name.substr(0, first_slash));
    name = name.substr(first_slash + 1);
    if (!is_registry(reference.registry)) return refuse("has an invalid registry host");
  } else {
    reference.registry = "docker.io";
  }
  if (reference.registry == "docker.io" || reference.registry == "index.docker.io") {
    reference.registry = std::string(kDockerHubRegistry);
  }
  reference.repository = std::string(name);
  if (reference.registry == kDockerHubRegistry && name.find('/') == std::string_view::npos) {
    reference.repository = "library/" + reference.repository;
  }
  if (!is_repository(reference.repository)) {
    return refuse(
        "has an invalid repository name: use lower-case letters and digits, separated by '/', "
        "'.', '_', '__' or dashes");
  }
  if (reference.registry.size() + 1 + reference.repository.size() > kMaxNameLength) {
    return refuse("is longer than 255 characters");
  }
  if (reference.tag.empty() && !reference.digest) reference.tag = "latest";
  return reference;
}

bool is_loopback_registry(std::string_view registry) {
  std::string_view host = registry;
  if (host.starts_with('[')) {
    host = host.substr(1, host.find(']') - 1);
    return host == "::1";
  }
  host = host.substr(0, host.find(':'));
  return host == "localhost" || host.starts_with("127.");
}

}  // namespace wharf::oci

// /v2/ path, Range and Content-Range parsing.
#include "registry/routes.hpp"

#include <charconv>

namespace wharf::registry {

namespace {

bool strip_suffix(std::string_view& text, std::string_view suffix) {
  if (!text.ends_with(suffix)) return false;
  text.remove_suffix(suffix.size());
  return true;
}

std::optional<uint64_t> parse_number(std::string_view text) {
  uint64_t value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    if (text[pos] != '%') {
      decoded.push_back(text[pos]);
      continue;
    }
    if (pos + 2 >= text.size()) return std::nullopt;
    int high = hex_value(text[pos + 1]);
    int low = hex_value(text[pos + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    decoded.push_back(static_cast<char>(high * 16 + low));
    pos += 2;
  }
  return decoded;
}

Route parse_route(std::string_view path) {
  if (!path.starts_with("/v2/")) return {};
  std::string_view rest = path.substr(4);
  if (rest.empty()) return {Endpoint::kBase, "", ""};
  if (rest == "token") return {Endpoint::kToken, "", ""};
  if (rest == "_catalog") return {Endpoint::kCatalog, "", ""};
  auto slash = rest.rfind('/');
  if (slash == std::string_view::npos) return {};
  std::string_view head = rest.substr(0, slash);
  auto last = percent_decode(rest.substr(slash + 1));
  if (!last) return {};
  auto route = [&](Endpoint endpoint, std::string_view name) {
    if (name.empty()) return Route{};
    return Route{endpoint, std::string(name), *last};
  };
  if (*last == "list" && strip_suffix(head, "/tags")) return route(Endpoint::kTags, head);
  if (strip_suffix(head, "/manifests")) {
    return last->empty() ? Route{} : route(Endpoint::kManifest, head);
  }
  if (strip_suffix(head, "/referrers")) {
    return last->empty() ? Route{} : route(Endpoint::kReferrers, head);
  }
  if (strip_suffix(head, "/blobs/uploads")) {
    return route(last->empty() ? Endpoint::kUploadStart : Endpoint::kUpload, head);
  }
  if (strip_suffix(head, "/blobs")) {
    if (last->empty()) return {};
    if (*last == "uploads") return {Endpoint::kUploadStart, std::string(head), ""};  // no '/'
    return route(Endpoint::kBlob, head);
  }
  return {};
}

Result<std::optional<ByteRange>> parse_range(std::string_view header, uint64_t size) {
  std::optional<ByteRange> whole;
  if (header.empty()) return whole;
  if (!header.starts_with("bytes=")) return whole;
  std::string_view spec = header.substr(6);
  if (spec.find(',') != std::string_view::npos) return whole;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view first_text = spec.substr(0, dash);
  std::string_view last_text = spec.substr(dash + 1);
  auto unsatisfiable = [&] {
    return invalid("range " + std::string(header) + " is outside the blob's " +
                   std::to_string(size) + " bytes");
  };
  if (first_text.empty()) {  // a suffix: the last N bytes
    auto suffix = parse_number(last_text);
    if (!suffix) return whole;
    if (*suffix == 0 || size == 0) return unsatisfiable();
    uint64_t length = std::min(*suffix, size);
    return std::optional<ByteRange>(ByteRange{size - length, size - 1});
  }
  auto first = parse_number(first_text);
  if (!first) return whole;
  std::optional<uint64_t> last =
      last_text.empty() ? std::optional<uint64_t>(UINT64_MAX) : parse_number(last_text);
  if (!last || *last < *first) return whole;
  if (*first >= size) return unsatisfiable();
  return std::optional<ByteRange>(ByteRange{*first, std::min(*last, size - 1)});
}

Result<ByteRange> parse_content_range(std::string_view header) {
  std::string_view spec = header;
  if (spec.starts_with("bytes ") || spec.starts_with("bytes=")) spec.remove_prefix(6);
  spec = spec.substr(0, spec.find('/'));
  auto dash = spec.find('-');
  auto malformed = [&] {
    return invalid("Content-Range '" + std::string(header) + "' must be <first>-<last>");
  };
  if (dash == std::string_view::npos) return malformed();
  auto first = parse_number(spec.substr(0, dash));
  auto last = parse_number(spec.substr(dash + 1));
  if (!first || !last || *last < *first) return malformed();
  return ByteRange{*first, *last};
}

}  // namespace wharf::registry

// A small recursive-descent parser for the WWW-Authenticate grammar.
#include "oci/www_authenticate.hpp"

#include <cctype>

#include "common/text.hpp"

namespace wharf::oci {
namespace {

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<std::vector<Challenge>> parse() {
    std::vector<Challenge> challenges;
    skip_separators();
    while (!done()) {
      std::string_view scheme = token();
      if (scheme.empty()) return malformed("expected an auth scheme");
      Challenge challenge{lower(scheme), {}};
      skip_spaces();
      while (!done() && starts_param()) {
        std::string name = lower(token());
        skip_spaces();
        ++pos_;  // '='
        skip_spaces();
        auto value = param_value();
        if (!value) return std::unexpected(value.error());
        challenge.params[name] = std::move(*value);
        skip_spaces();
        if (!done() && text_[pos_] != ',') return malformed("expected ',' after a parameter");
        skip_separators();
      }
      if (!done() && challenge.params.empty()) {
        // "Basic, Bearer realm=..." : a scheme without parameters, then the next challenge.
        if (text_[pos_] != ',') return malformed("expected ',' or a parameter after the scheme");
        skip_separators();
      }
      challenges.push_back(std::move(challenge));
    }
    if (challenges.empty()) return malformed("no challenge");
    return challenges;
  }

 private:
  bool done() const { return pos_ >= text_.size(); }

  void skip_spaces() {
    while (!done() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  void skip_separators() {
    while (!done() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == ',')) ++pos_;
  }

  std::string_view token() {
    std::size_t start = pos_;
    while (!done() && is_tchar(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  // Whether a "name=" follows (a parameter) rather than the next challenge's scheme.
  bool starts_param() const {
    std::size_t probe = pos_;
    while (probe < text_.size() && is_tchar(text_[probe])) ++probe;
    if (probe == pos_) return false;
    while (probe < text_.size() && (text_[probe] == ' ' || text_[probe] == '\t')) ++probe;
    return probe < text_.size() && text_[probe] == '=';
  }

  Result<std::string> param_value() {
    if (done()) return malformed("a parameter has no value");
    if (text_[pos_] != '"') {
      std::string_view value = token();
      if (value.empty()) return malformed("a parameter value is neither a token nor quoted");
      return std::string(value);
    }
    ++pos_;
    std::string value;
    while (!done() && text_[pos_] != '"') {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      value += text_[pos_++];
    }
    if (done()) return malformed("a quoted value is not closed");
    ++pos_;
    return value;
  }

  std::unexpected<Error> malformed(std::string_view why) const {
    return invalid("malformed WWW-Authenticate '" + std::string(text_) + "': " + std::string(why) +
                   " at offset " + std::to_string(pos_));
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<std::string> Challenge::param(std::string_view name) const {
  auto found = params.find(std::string(name));
  if (found == params.end()) return std::nullopt;
  return found->second;
}

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header) {
  return Parser(header).parse();
}

}  // namespace wharf::oci

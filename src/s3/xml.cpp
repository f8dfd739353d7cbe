// XmlWriter and a small recursive-descent XML parser.
#include "s3/xml.hpp"

#include "aws/query_api.hpp"

#include <cctype>
#include <optional>

namespace wharf::s3 {

namespace {

constexpr std::string_view kNamespace = "http://s3.amazonaws.com/doc/2006-03-01/";
constexpr int kMaxDepth = 32;

std::unexpected<Error> malformed(std::string why) {
  return fail_as(ErrorCode::kSerialization, "MalformedXML",
                 "The XML you provided was not well-formed or did not validate against our "
                 "published schema: " +
                     why);
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<XmlNode> document() {
    skip_misc();
    auto root = element(0);
    if (!root) return root;
    skip_misc();
    if (pos_ != text_.size()) return malformed("text after the root element");
    return root;
  }

 private:
  bool at(std::string_view token) const { return text_.substr(pos_).starts_with(token); }

  void skip_space() {
    while (pos_ < text_.size() &&
           std::string_view(" \t\r\n").find(text_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
  }

  // Skips white space, the declaration, processing instructions and comments.
  void skip_misc() {
    while (true) {
      skip_space();
      std::string_view end = at("<?") ? "?>" : at("<!--") ? "-->" : "";
      if (end.empty()) return;
      auto found = text_.find(end, pos_);
      pos_ = found == std::string_view::npos ? text_.size() : found + end.size();
    }
  }

  static std::string_view local_name(std::string_view name) {
    auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
  }

  Result<std::string> decode(std::string_view raw) {
    std::string out;
    for (std::size_t char_idx = 0; char_idx < raw.size(); ++char_idx) {
      if (raw[char_idx] != '&') {
        out += raw[char_idx];
        continue;
      }
      auto semicolon = raw.find(';', char_idx);
      if (semicolon == std::string_view::npos) return malformed("an unterminated entity");
      auto entity = raw.substr(char_idx + 1, semicolon - char_idx - 1);
      if (entity == "amp")
        out += '&';
      else if (entity == "lt")
        out += '<';
      else if (entity == "gt")
        out += '>';
      else if (entity == "quot")
        out += '"';
      else if (entity == "apos")
        out += '\'';
      else if (entity.starts_with("#")) {
        auto code = character_reference(entity.substr(1));
        if (!code) return malformed("a bad character reference");
        append_utf8(out, *code);
      } else {
        return malformed("an unknown entity &" + std::string(entity) + ";");
      }
      char_idx = semicolon;
    }
    return out;
  }

  static std::optional<unsigned> character_reference(std::string_view digits) {
    int base = 10;
    if (digits.starts_with("x")) {
      base = 16;
      digits.remove_prefix(1);
    }
    if (digits.empty() || digits.size() > 8) return std::nullopt;
    unsigned value = 0;
    for (char c : digits) {
      int digit = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                  : base == 16 && std::isxdigit(static_cast<unsigned char>(c))
                      ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                      : -1;
      if (digit < 0) return std::nullopt;
      value = value * base + static_cast<unsigned>(digit);
    }
    if (value > 0x10ffff) return std::nullopt;
    return value;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xc0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xe0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }

  Result<XmlNode> element(int depth) {
    if (depth > kMaxDepth) return malformed("elements nested too deeply");
    if (!at("<")) return malformed("an element was expected");
    auto tag_end = text_.find('>', pos_);
    if (tag_end == std::string_view::npos) return malformed("an unterminated tag");
    auto tag = text_.substr(pos_ + 1, tag_end - pos_ - 1);
    pos_ = tag_end + 1;
    bool empty = tag.ends_with('/');
    if (empty) tag.remove_suffix(1);
    auto name_end = tag.find_first_of(" \t\r\n");
    XmlNode node;
    std::string_view raw_name = tag.substr(0, name_end);
    if (raw_name.empty()) return malformed("an element without a name");
    node.name = local_name(raw_name);
    if (empty) return node;
    std::string raw_text;
    while (true) {
      auto next = text_.find('<', pos_);
      if (next == std::string_view::npos) return malformed("<" + node.name + "> is not closed");
      raw_text += text_.substr(pos_, next - pos_);
      pos_ = next;
      if (at("<!--") || at("<?")) {
        skip_misc();
        continue;
      }
      if (at("<![CDATA[")) {
        auto end = text_.find("]]>", pos_);
        if (end == std::string_view::npos) return malformed("an unterminated CDATA section");
        node.text += text_.substr(pos_ + 9, end - pos_ - 9);
        pos_ = end + 3;
        continue;
      }
      if (at("</")) break;
      auto child = element(depth + 1);
      if (!child) return child;
      node.children.push_back(std::move(*child));
    }
    auto close_end = text_.find('>', pos_);
    if (close_end == std::string_view::npos) return malformed("an unterminated closing tag");
    auto closing = trim_right(text_.substr(pos_ + 2, close_end - pos_ - 2));
    if (local_name(closing) != node.name) {
      return malformed("<" + node.name + "> is closed by </" + std::string(closing) + ">");
    }
    pos_ = close_end + 1;
    auto text = decode(raw_text);
    if (!text) return std::unexpected(text.error());
    node.text = *text + node.text;
    return node;
  }

  static std::string_view trim_right(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
      text.remove_suffix(1);
    }
    return text;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  aws::append_xml_escaped(out, text);
  return out;
}

XmlWriter::XmlWriter() : out_("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") {}

XmlWriter& XmlWriter::open(std::string_view name, bool with_namespace) {
  out_ += '<';
  out_ += name;
  if (with_namespace) {
    out_ += " xmlns=\"";
    out_ += kNamespace;
    out_ += '"';
  }
  out_ += '>';
  return *this;
}

XmlWriter& XmlWriter::close(std::string_view name) {
  out_ += "</";
  out_ += name;
  out_ += '>';
  return *this;
}

XmlWriter& XmlWriter::element(std::string_view name, std::string_view text) {
  open(name);
  out_ += xml_escape(text);
  return close(name);
}

const XmlNode* XmlNode::child(std::string_view wanted) const {
  for (const auto& node : children) {
    if (node.name == wanted) return &node;
  }
  return nullptr;
}

std::vector<const XmlNode*> XmlNode::children_named(std::string_view wanted) const {
  std::vector<const XmlNode*> out;
  for (const auto& node : children) {
    if (node.name == wanted) out.push_back(&node);
  }
  return out;
}

Result<XmlNode> parse_xml(std::string_view text) {
  return Parser(text).document();
}

}  // namespace wharf::s3

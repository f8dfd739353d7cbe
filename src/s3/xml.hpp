// The little XML S3 speaks: a writer for responses and a parser for the few request bodies
// (CreateBucketConfiguration, Delete, CompleteMultipartUpload).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace wharf::s3 {

// Escapes &, <, >, " and ' for element text and attribute values.
std::string xml_escape(std::string_view text);

// Builds a document element by element; open() and close() must pair up.
class XmlWriter {
 public:
  // Starts with the XML declaration.
  XmlWriter();
  // Opens `name`, with S3's namespace when `with_namespace` (the root of a response).
  XmlWriter& open(std::string_view name, bool with_namespace = false);
  XmlWriter& close(std::string_view name);
  // <name>escaped text</name>
  XmlWriter& element(std::string_view name, std::string_view text);
  std::string str() const { return out_; }

 private:
  std::string out_;
};

// An element: its name (namespace prefix dropped), text (entities decoded) and child elements.
struct XmlNode {
  std::string name;
  std::string text;
  std::vector<XmlNode> children;

  // The first child named `name`, or nullptr.
  const XmlNode* child(std::string_view name) const;
  // Every child named `name`, in document order.
  std::vector<const XmlNode*> children_named(std::string_view name) const;
};

// Parses a document's root element. Attributes, comments, processing instructions and the
// declaration are skipped. Malformed input → kSerialization (S3's MalformedXML).
Result<XmlNode> parse_xml(std::string_view text);

}  // namespace wharf::s3

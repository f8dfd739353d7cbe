// XmlWriter escaping and the request-body parser.
#include "s3/xml.hpp"

#include <gtest/gtest.h>

namespace wharf::s3 {
namespace {

TEST(XmlWriter, EscapesTextAndAddsTheNamespaceToTheRoot) {
  XmlWriter xml;
  xml.open("Root", true).element("Key", "a<b>&\"c'").close("Root");
  EXPECT_EQ(xml.str(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Root xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Key>a&lt;b&gt;&amp;&quot;c&apos;</Key></Root>");
}

TEST(XmlParser, ReadsADeleteRequest) {
  auto document = parse_xml(
      "<?xml version=\"1.0\"?>\n<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Object><Key>a &amp; b</Key></Object><!-- c --><Object><Key>&#x263A;&#65;</Key></Object>"
      "<Quiet>true</Quiet></Delete>");
  ASSERT_TRUE(document.has_value()) << document.error().message;
  EXPECT_EQ(document->name, "Delete");
  auto objects = document->children_named("Object");
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_EQ(objects[0]->child("Key")->text, "a & b");
  EXPECT_EQ(objects[1]->child("Key")->text,
            "\xE2\x98\xBA"
            "A");
  EXPECT_EQ(document->child("Quiet")->text, "true");
  EXPECT_EQ(document->child("Missing"), nullptr);
}

TEST(XmlParser, DropsNamespacePrefixesAndReadsEmptyElementsAndCdata) {
  auto document = parse_xml("<s3:A><s3:B/><C><![CDATA[<x>]]></C></s3:A>");
  ASSERT_TRUE(document.has_value()) << document.error().message;
  EXPECT_NE(document->child("B"), nullptr);
  EXPECT_EQ(document->child("C")->text, "<x>");
}

TEST(XmlParser, RejectsMalformedDocuments) {
  for (const char* text :
       {"", "<A>", "<A></B>", "<A>&bogus;</A>", "<A/><B/>", "text", "<A><B></A>"}) {
    auto document = parse_xml(text);
    ASSERT_FALSE(document.has_value()) << text;
    EXPECT_EQ(document.error().wire_type, "MalformedXML");
  }
}

}  // namespace
}  // namespace wharf::s3

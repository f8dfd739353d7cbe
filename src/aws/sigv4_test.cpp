// Unit tests for SigV4: AWS's published vectors, then verify() accepting and refusing requests.
#include "aws/sigv4.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/error.hpp"

namespace wharf::aws {
namespace {

using namespace std::chrono_literals;

using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kAccessKeyId = "AKIDEXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kRegion = "us-east-1";
constexpr std::string_view kSuiteService = "service";
constexpr std::string_view kSuiteDate = "20150830T123600Z";
constexpr std::string_view kEmptyHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kSuiteStringToSignPrefix =
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n";
constexpr std::string_view kMismatchMessage =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";

TimePoint at(const std::string& amz) {
  TimePoint time;
  EXPECT_TRUE(parse_amz_date(amz, time)) << amz;
  return time;
}

TimePoint suite_time() {
  return at(std::string(kSuiteDate));
}

std::optional<std::string> example_secret(std::string_view access_key_id) {
  if (access_key_id == kAccessKeyId) return std::string(kSecret);
  return std::nullopt;
}

// One case of the aws-sig-v4-test-suite (2015-08-30 edition). Requests, canonical requests,
// string-to-sign hashes and signatures are copied from the suite, not computed here.
struct SuiteCase {
  std::string name;
  std::string method;
  std::string target;
  Headers headers;
  std::string body;
  std::string canonical_request;
  std::string string_to_sign_hash;
  std::string signed_headers;
  std::string signature;
};

Headers suite_headers(Headers extra = {}) {
  Headers headers{{"Host", "example.amazonaws.com"}};
  for (auto& header : extra) headers.push_back(std::move(header));
  headers.emplace_back("X-Amz-Date", std::string(kSuiteDate));
  return headers;
}

std::string get_creq(std::string_view uri, std::string_view query = "") {
  return "GET\n" + std::string(uri) + "\n" + std::string(query) +
         "\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
         std::string(kEmptyHash);
}

std::string post_creq(std::string_view query = "") {
  return "POST\n/\n" + std::string(query) +
         "\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
         std::string(kEmptyHash);
}

constexpr std::string_view kVanillaHash =
    "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63";
constexpr std::string_view kVanillaSignature =
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
constexpr std::string_view kUnreserved =
    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kStsToken =
    "AQoDYXdzEPT//////////"
    "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeo"
    "IYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/"
    "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5"
    "VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
    "scqKmlzm8FDrypNC9"
    "Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

std::vector<SuiteCase> suite_cases() {
  const std::string vanilla_hash(kVanillaHash);
  const std::string vanilla_signature(kVanillaSignature);
  const std::string unreserved(kUnreserved);
  const std::string host_date = "host;x-amz-date";
  return {
      {"get-vanilla", "GET", "/", suite_headers(), "", get_creq("/"), vanilla_hash, host_date,
       vanilla_signature},
      {"get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", suite_headers(),
       "", get_creq("/", "Param1=value1&Param2=value2"),
       "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0", host_date,
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-order-key", "GET", "/?Param1=value2&Param1=Value1", suite_headers(), "",
       get_creq("/", "Param1=Value1&Param1=value2"),
       "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89", host_date,
       "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
      {"get-vanilla-query-order-value", "GET", "/?Param1=value2&Param1=value1", suite_headers(), "",
       get_creq("/", "Param1=value1&Param1=value2"),
       "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606", host_date,
       "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
      {"get-vanilla-empty-query-key", "GET", "/?Param1=value1", suite_headers(), "",
       get_creq("/", "Param1=value1"),
       "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab", host_date,
       "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-vanilla-query-unreserved", "GET", "/?" + unreserved + "=" + unreserved, suite_headers(),
       "", get_creq("/", unreserved + "=" + unreserved),
       "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177", host_date,
       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query", "GET", "/?\xE1\x88\xB4=bar", suite_headers(), "",
       get_creq("/", "%E1%88%B4=bar"),
       "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073", host_date,
       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-unreserved", "GET", "/" + unreserved, suite_headers(), "", get_creq("/" + unreserved),
       "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9", host_date,
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8", "GET", "/\xE1\x88\xB4", suite_headers(), "", get_creq("/%E1%88%B4"),
       "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102", host_date,
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-space", "GET", "/example space/", suite_headers(), "", get_creq("/example%20space/"),
       "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86", host_date,
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      {"get-relative", "GET", "/example/..", suite_headers(), "", get_creq("/"), vanilla_hash,
       host_date, vanilla_signature},
      {"get-relative-relative", "GET", "/example1/example2/../..", suite_headers(), "",
       get_creq("/"), vanilla_hash, host_date, vanilla_signature},
      {"get-slash", "GET", "//", suite_headers(), "", get_creq("/"), vanilla_hash, host_date,
       vanilla_signature},
      {"get-slash-dot-slash", "GET", "/./", suite_headers(), "", get_creq("/"), vanilla_hash,
       host_date, vanilla_signature},
      {"get-slash-pointless-dot", "GET", "/./example", suite_headers(), "", get_creq("/example"),
       "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702", host_date,
       "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
      {"get-slashes", "GET", "//example//", suite_headers(), "", get_creq("/example/"),
       "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015", host_date,
       "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {"get-header-value-trim", "GET", "/",
       suite_headers({{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}), "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" +
           std::string(kEmptyHash),
       "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
       "host;my-header1;my-header2;x-amz-date",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get-header-key-duplicate", "GET", "/",
       suite_headers(
           {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}),
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
           std::string(kEmptyHash),
       "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
       "host;my-header1;x-amz-date",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-header-value-order", "GET", "/",
       suite_headers({{"My-Header1", "value4"},
                      {"My-Header1", "value1"},
                      {"My-Header1", "value3"},
                      {"My-Header1", "value2"}}),
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
           std::string(kEmptyHash),
       "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
       "host;my-header1;x-amz-date",
       "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"post-vanilla", "POST", "/", suite_headers(), "", post_creq(),
       "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87", host_date,
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-vanilla-query", "POST", "/?Param1=value1", suite_headers(), "",
       post_creq("Param1=value1"),
       "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd", host_date,
       "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      {"post-header-key-sort", "POST", "/", suite_headers({{"My-Header1", "value1"}}), "",
       "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\n"
       "host;my-header1;x-amz-date\n" +
           std::string(kEmptyHash),
       "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
       "host;my-header1;x-amz-date",
       "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {"post-header-value-case", "POST", "/", suite_headers({{"My-Header1", "VALUE1"}}), "",
       "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\n"
       "host;my-header1;x-amz-date\n" +
           std::string(kEmptyHash),
       "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
       "host;my-header1;x-amz-date",
       "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      {"post-x-www-form-urlencoded",
       "POST",
       "/",
       {{"Content-Type", "application/x-www-form-urlencoded"},
        {"Host", "example.amazonaws.com"},
        {"X-Amz-Date", std::string(kSuiteDate)}},
       "Param1=value1",
       "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
       "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
       "content-type;host;x-amz-date",
       "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
      {"post-sts-header-before", "POST", "/",
       suite_headers({{"X-Amz-Security-Token", std::string(kStsToken)}}), "",
       "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
       "x-amz-security-token:" +
           std::string(kStsToken) + "\n\nhost;x-amz-date;x-amz-security-token\n" +
           std::string(kEmptyHash),
       "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
       "host;x-amz-date;x-amz-security-token",
       "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
  };
}

std::string suite_authorization(const SuiteCase& suite_case) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=" +
         suite_case.signed_headers + ", Signature=" + suite_case.signature;
}

SignableRequest suite_request(const SuiteCase& suite_case) {
  return SignableRequest{suite_case.method, suite_case.target, suite_case.headers, suite_case.body};
}

std::vector<std::string> split_signed_headers(const std::string& list) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (true) {
    auto semicolon = list.find(';', start);
    names.push_back(list.substr(start, semicolon - start));
    if (semicolon == std::string::npos) return names;
    start = semicolon + 1;
  }
}

class SigV4Suite : public testing::TestWithParam<SuiteCase> {};

TEST_P(SigV4Suite, CanonicalRequestMatches) {
  const auto& suite_case = GetParam();
  auto request = suite_request(suite_case);
  EXPECT_EQ(canonical_request(request, split_signed_headers(suite_case.signed_headers),
                              sha256_hex(suite_case.body)),
            suite_case.canonical_request);
}

TEST_P(SigV4Suite, StringToSignMatches) {
  const auto& suite_case = GetParam();
  auto scope = credential_scope("20150830", kRegion, kSuiteService);
  EXPECT_EQ(string_to_sign(kSuiteDate, scope, suite_case.canonical_request),
            std::string(kSuiteStringToSignPrefix) + suite_case.string_to_sign_hash);
}

TEST_P(SigV4Suite, SignatureMatches) {
  const auto& suite_case = GetParam();
  auto to_sign = std::string(kSuiteStringToSignPrefix) + suite_case.string_to_sign_hash;
  EXPECT_EQ(signature(kSecret, "20150830", kRegion, kSuiteService, to_sign), suite_case.signature);
}

TEST_P(SigV4Suite, SignRequestProducesTheSuiteAuthorization) {
  const auto& suite_case = GetParam();
  auto request = suite_request(suite_case);
  sign_request(request, kAccessKeyId, kSecret, kRegion, kSuiteService, suite_time());
  ASSERT_EQ(request.headers.back().first, "Authorization");
  EXPECT_EQ(request.headers.back().second, suite_authorization(suite_case));
}

TEST_P(SigV4Suite, VerifyAcceptsTheSuiteRequest) {
  const auto& suite_case = GetParam();
  auto request = suite_request(suite_case);
  request.headers.emplace_back("Authorization", suite_authorization(suite_case));
  auto caller = verify(request, example_secret, suite_time());
  ASSERT_TRUE(caller.has_value()) << caller.error().message;
  EXPECT_EQ(caller->access_key_id, kAccessKeyId);
  EXPECT_EQ(caller->region, kRegion);
  EXPECT_EQ(caller->service, kSuiteService);
}

INSTANTIATE_TEST_SUITE_P(AwsSigV4TestSuite, SigV4Suite, testing::ValuesIn(suite_cases()),
                         [](const testing::TestParamInfo<SuiteCase>& info) {
                           std::string name = info.param.name;
                           std::erase(name, '-');
                           return name;
                         });

// The worked example in the AWS General Reference ("Create a signed AWS API request"): IAM
// ListUsers, signed on 2015-08-30 in us-east-1.
SignableRequest iam_list_users() {
  return SignableRequest{"GET",
                         "/?Action=ListUsers&Version=2010-05-08",
                         {{"Host", "iam.amazonaws.com"},
                          {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                          {"X-Amz-Date", "20150830T123600Z"}},
                         ""};
}

constexpr std::string_view kIamCanonicalRequest =
    "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
    "content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\n"
    "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kIamStringToSign =
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
    "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
constexpr std::string_view kIamSignature =
    "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

TEST(SigV4IamExample, CanonicalRequestAndStringToSign) {
  auto request = iam_list_users();
  auto canonical =
      canonical_request(request, {"content-type", "host", "x-amz-date"}, sha256_hex(""));
  EXPECT_EQ(canonical, kIamCanonicalRequest);
  EXPECT_EQ(
      string_to_sign("20150830T123600Z", credential_scope("20150830", kRegion, "iam"), canonical),
      kIamStringToSign);
}

TEST(SigV4IamExample, AbsoluteFormTargetSignsOnlyPathAndQuery) {
  auto request = iam_list_users();
  request.target = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08";
  EXPECT_EQ(canonical_request(request, {"content-type", "host", "x-amz-date"}, sha256_hex("")),
            kIamCanonicalRequest);
}

TEST(SigV4IamExample, Signature) {
  EXPECT_EQ(signature(kSecret, "20150830", kRegion, "iam", kIamStringToSign), kIamSignature);
}

TEST(SigV4IamExample, SignRequestAndVerify) {
  auto request = iam_list_users();
  sign_request(request, kAccessKeyId, kSecret, kRegion, "iam", suite_time());
  EXPECT_EQ(request.headers.back().second,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, Signature=" +
                std::string(kIamSignature));
  auto caller = verify(request, example_secret, suite_time());
  ASSERT_TRUE(caller.has_value()) << caller.error().message;
  EXPECT_EQ(caller->service, "iam");
}

// "Examples of how to derive a signing key for Signature Version 4" in the AWS documentation.
TEST(SigV4SigningKey, MatchesTheDocumentedDerivations) {
  EXPECT_EQ(to_hex(signing_key(kSecret, "20150830", kRegion, "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
  EXPECT_EQ(to_hex(signing_key(kSecret, "20120215", kRegion, "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(SigV4Canonical, ParameterWithoutEqualsHasAnEmptyValue) {
  SignableRequest request{"GET", "/?b&a=1&&c=", {{"Host", "h"}}, ""};
  auto canonical = canonical_request(request, {"host"}, "x");
  EXPECT_EQ(canonical, "GET\n/\na=1&b=&c=\nhost:h\n\nhost\nx");
}

TEST(SigV4Canonical, QueryIsDecodedThenEncodedOnce) {
  SignableRequest request{"GET", "/?k%2Fey=a%20b+c&t=%7e&u=%zz", {{"Host", "h"}}, ""};
  auto canonical = canonical_request(request, {"host"}, "x");
  EXPECT_EQ(canonical, "GET\n/\nk%2Fey=a%20b%2Bc&t=~&u=%25zz\nhost:h\n\nhost\nx");
}

TEST(SigV4Canonical, EncodedPathIsEncodedOnceMoreAsNonS3ServicesDo) {
  SignableRequest request{"GET", "/a%20b/c:d", {{"Host", "h"}}, ""};
  auto canonical = canonical_request(request, {"host"}, "x");
  EXPECT_EQ(canonical, "GET\n/a%2520b/c%3Ad\n\nhost:h\n\nhost\nx");
}

// "GET Object" with a Range header, from "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk" in the Amazon S3 documentation.
constexpr std::string_view kS3Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kS3Signature =
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
SignableRequest s3_get_object() {
  return SignableRequest{"GET",
                         "/test.txt",
                         {{"Host", "examplebucket.s3.amazonaws.com"},
                          {"Range", "bytes=0-9"},
                          {"x-amz-content-sha256", std::string(kEmptyHash)}},
                         ""};
}

TimePoint s3_example_time() {
  TimePoint time;
  EXPECT_TRUE(parse_amz_date("20130524T000000Z", time));
  return time;
}

TEST(SigV4S3Example, SignRequestProducesTheDocumentedSignature) {
  auto request = s3_get_object();
  sign_request(request, "AKIAIOSFODNN7EXAMPLE", kS3Secret, kRegion, "s3", s3_example_time());
  EXPECT_EQ(request.headers.back().second,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=" +
                std::string(kS3Signature));
  auto caller = verify(
      request, [](std::string_view) { return std::optional<std::string>(kS3Secret); },
      s3_example_time());
  ASSERT_TRUE(caller.has_value()) << caller.error().message;
  EXPECT_EQ(caller->service, "s3");
}

// The presigned GET of "Authenticating Requests: Using Query Parameters (AWS Signature Version
// 4)" in the Amazon S3 documentation.
std::string presigned_target(
    std::string_view expires = "86400",
    std::string_view signature =
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") {
  return "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
         "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=" +
         std::string(expires) +
         "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + std::string(signature);
}

Result<VerifiedCaller> verify_presigned_example(const std::string& target, TimePoint now) {
  SignableRequest request{"GET", target, {{"Host", "examplebucket.s3.amazonaws.com"}}, ""};
  return verify_presigned(
      request, [](std::string_view) { return std::optional<std::string>(kS3Secret); }, now);
}

TEST(SigV4Presigned, AcceptsTheDocumentedUrlUntilItExpires) {
  auto caller = verify_presigned_example(presigned_target(), s3_example_time() + 10s);
  ASSERT_TRUE(caller.has_value()) << caller.error().message;
  EXPECT_EQ(caller->access_key_id, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(caller->service, "s3");

  auto expired = verify_presigned_example(presigned_target(), s3_example_time() + 86401s);
  ASSERT_FALSE(expired.has_value());
  EXPECT_EQ(expired.error().code, ErrorCode::kAccessDenied);
  EXPECT_EQ(expired.error().message, "Request has expired");

  auto early = verify_presigned_example(presigned_target(), s3_example_time() - 1h);
  ASSERT_FALSE(early.has_value());
  EXPECT_EQ(early.error().message, "Request is not valid yet");
}

TEST(SigV4Presigned, RefusesTamperingAndBadParameters) {
  // A longer life than was signed.
  auto stretched = verify_presigned_example(presigned_target("86401"), s3_example_time());
  ASSERT_FALSE(stretched.has_value());
  EXPECT_EQ(stretched.error().code, ErrorCode::kInvalidSignature);

  auto too_long = verify_presigned_example(presigned_target("604801"), s3_example_time());
  ASSERT_FALSE(too_long.has_value());
  EXPECT_EQ(too_long.error().wire_type, "AuthorizationQueryParametersError");

  auto unsigned_target = presigned_target();
  unsigned_target.erase(unsigned_target.find("&X-Amz-Signature="));
  auto missing = verify_presigned_example(unsigned_target, s3_example_time());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().wire_type, "AuthorizationQueryParametersError");
  EXPECT_NE(missing.error().message.find("X-Amz-Signature"), std::string::npos);

  SignableRequest stranger{
      "GET", presigned_target(), {{"Host", "examplebucket.s3.amazonaws.com"}}, ""};
  auto unknown = verify_presigned(
      stranger, [](std::string_view) { return std::optional<std::string>(); }, s3_example_time());
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kUnrecognizedClient);
}

TEST(SigV4S3Example, SignRequestAddsTheBodyHashWhenAbsent) {
  SignableRequest request{"PUT", "/b/k", {{"Host", "h"}}, "hello"};
  sign_request(request, "AKIAIOSFODNN7EXAMPLE", kS3Secret, kRegion, "s3", s3_example_time());
  auto found = std::find_if(request.headers.begin(), request.headers.end(), [](const auto& header) {
    return header.first == "X-Amz-Content-Sha256";
  });
  ASSERT_NE(found, request.headers.end());
  EXPECT_EQ(found->second, sha256_hex("hello"));
}

TEST(SigV4Canonical, S3PathIsSignedExactlyAsSent) {
  SignableRequest request{"GET", "/b/a%20b//c%3Ad/../e+f", {{"Host", "h"}}, ""};
  EXPECT_EQ(canonical_request(request, {"host"}, "x", "s3"),
            "GET\n/b/a%20b//c%3Ad/../e+f\n\nhost:h\n\nhost\nx");
  SignableRequest root{"GET", "", {{"Host", "h"}}, ""};
  EXPECT_EQ(canonical_request(root, {"host"}, "x", "s3"), "GET\n/\n\nhost:h\n\nhost\nx");
}

TEST(SigV4StreamedPayload, SignsItsDeclaredHash) {
  SignableRequest request{"PUT", "/b/k", {{"Host", "h"}}, "body"};
  sign_request(request, "AKIAIOSFODNN7EXAMPLE", kS3Secret, kRegion, "s3", s3_example_time());
  request.payload = "";
  auto lookup = [](std::string_view) { return std::optional<std::string>(kS3Secret); };
  EXPECT_FALSE(verify(request, lookup, s3_example_time()).has_value());
  request.payload_streamed = true;
  EXPECT_TRUE(verify(request, lookup, s3_example_time()).has_value());
}

TEST(SigV4Canonical, SignedHeaderNamesAreLowerCasedAndSorted) {
  SignableRequest request{"POST", "/", {{"X-B", "2"}, {"host", "h"}, {"x-a", " 1 "}}, ""};
  auto canonical = canonical_request(request, {"X-B", "host", "X-A"}, "x");
  EXPECT_EQ(canonical, "POST\n/\n\nhost:h\nx-a:1\nx-b:2\n\nhost;x-a;x-b\nx");
}

TEST(SigV4ParseAuthorization, ReadsEveryPart) {
  auto auth = parse_authorization(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request, "
      "SignedHeaders=host;X-Amz-Date, Signature=abc123");
  ASSERT_TRUE(auth.has_value()) << auth.error().message;
  EXPECT_EQ(auth->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(auth->date, "20150830");
  EXPECT_EQ(auth->region, "us-east-1");
  EXPECT_EQ(auth->service, "ecs");
  EXPECT_EQ(auth->signed_headers, (std::vector<std::string>{"host", "x-amz-date"}));
  EXPECT_EQ(auth->signature, "abc123");
}

TEST(SigV4ParseAuthorization, RejectsMalformedHeaders) {
  const std::vector<std::string> malformed = {
      "",
      "Bearer abc.def.ghi",
      "AWS AKIDEXAMPLE:c2lnbmF0dXJl",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "Signature=abc",
      "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=abc",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date",
      "AWS4-HMAC-SHA256 Credential AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=abc",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=abc",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, "
      "SignedHeaders=host;x-amz-date, Signature=abc",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE//us-east-1/service/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=abc",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=host;;x-amz-date, Signature=abc",
  };
  for (const auto& header : malformed) {
    auto auth = parse_authorization(header);
    ASSERT_FALSE(auth.has_value()) << header;
    EXPECT_EQ(auth.error().code, ErrorCode::kIncompleteSignature) << header;
  }
}

TEST(SigV4ParseAuthorization, NamesEveryMissingPartAsAwsDoes) {
  auto auth = parse_authorization("AWS AKIDEXAMPLE:c2ln");
  ASSERT_FALSE(auth.has_value());
  EXPECT_EQ(auth.error().message,
            "Authorization header requires 'Credential' parameter. Authorization header requires "
            "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
            "Authorization=AWS AKIDEXAMPLE:c2ln");
}

// verify(): an ECS call as the AWS CLI would send it, signed at the suite's instant.
class SigV4Verify : public testing::Test {
 protected:
  static SignableRequest ecs_request() {
    return SignableRequest{"POST",
                           "/",
                           {{"Host", "ecs.us-east-1.amazonaws.com"},
                            {"Content-Type", "application/x-amz-json-1.1"},
                            {"X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters"}},
                           kBody};
  }

  static SignableRequest signed_ecs_request(std::string_view access_key_id = kAccessKeyId,
                                            std::string_view secret = kSecret) {
    auto request = ecs_request();
    sign_request(request, access_key_id, secret, kRegion, "ecs", suite_time());
    return request;
  }

  // Signs with an explicit header list, for requests sign_request would never produce.
  static void sign_with(SignableRequest& request, const std::vector<std::string>& signed_headers,
                        std::string_view scope_date = "20150830") {
    auto scope = credential_scope(scope_date, kRegion, "ecs");
    auto canonical = canonical_request(request, signed_headers, sha256_hex(request.payload));
    std::string list;
    for (const auto& name : signed_headers) list += (list.empty() ? "" : ";") + name;
    request.headers.emplace_back("Authorization",
                                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + scope +
                                     ", SignedHeaders=" + list + ", Signature=" +
                                     signature(kSecret, scope_date, kRegion, "ecs",
                                               string_to_sign(kSuiteDate, scope, canonical)));
  }

  static Result<VerifiedCaller> check(const SignableRequest& request, TimePoint now) {
    return verify(request, example_secret, now);
  }

  static void expect_error(const Result<VerifiedCaller>& result, ErrorCode code,
                           std::string_view message = "") {
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, code) << result.error().message;
    if (message.empty()) return;
    EXPECT_EQ(result.error().message, message);
  }

  static constexpr std::string_view kBody = R"({"maxResults":10})";
  ManualClock clock_{suite_time()};
};

TEST_F(SigV4Verify, AcceptsAGoodRequest) {
  auto caller = check(signed_ecs_request(), clock_.now());
  ASSERT_TRUE(caller.has_value()) << caller.error().message;
  EXPECT_EQ(caller->access_key_id, kAccessKeyId);
  EXPECT_EQ(caller->region, kRegion);
  EXPECT_EQ(caller->service, "ecs");
}

TEST_F(SigV4Verify, RejectsTheWrongSecret) {
  auto request = signed_ecs_request(kAccessKeyId, "not-the-secret");
  expect_error(check(request, clock_.now()), ErrorCode::kInvalidSignature, kMismatchMessage);
}

TEST_F(SigV4Verify, RejectsAnUnknownKey) {
  auto request = signed_ecs_request("AKIDUNKNOWN", kSecret);
  expect_error(check(request, clock_.now()), ErrorCode::kUnrecognizedClient,
               "The security token included in the request is invalid.");
}

TEST_F(SigV4Verify, AcceptsSkewUpToFifteenMinutesEitherWay) {
  auto request = signed_ecs_request();
  clock_.advance(std::chrono::minutes(15));
  EXPECT_TRUE(check(request, clock_.now()).has_value());
  EXPECT_TRUE(check(request, suite_time() - std::chrono::minutes(15)).has_value());
}

TEST_F(SigV4Verify, RejectsAnExpiredSignatureWithAwsWording) {
  auto request = signed_ecs_request();
  clock_.advance(std::chrono::minutes(30));
  expect_error(check(request, clock_.now()), ErrorCode::kInvalidSignature,
               "Signature expired: 20150830T123600Z is now earlier than 20150830T125100Z "
               "(20150830T130600Z - 15 min.)");
  ManualClock just_past(suite_time() + std::chrono::minutes(15) + std::chrono::seconds(1));
  expect_error(check(request, just_past.now()), ErrorCode::kInvalidSignature);
}

TEST_F(SigV4Verify, RejectsAFutureSignatureWithAwsWording) {
  auto request = signed_ecs_request();
  expect_error(check(request, suite_time() - std::chrono::minutes(30)),
               ErrorCode::kInvalidSignature,
               "Signature not yet current: 20150830T123600Z is still later than 20150830T122100Z "
               "(20150830T120600Z + 15 min.)");
  expect_error(check(request, suite_time() - std::chrono::minutes(15) - std::chrono::seconds(1)),
               ErrorCode::kInvalidSignature);
}

TEST_F(SigV4Verify, HonoursACustomSkew) {
  auto request = signed_ecs_request();
  expect_error(verify(request, example_secret, suite_time() + std::chrono::minutes(6),
                      std::chrono::minutes(5)),
               ErrorCode::kInvalidSignature,
               "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z "
               "(20150830T124200Z - 5 min.)");
}

TEST_F(SigV4Verify, RejectsAMissingAuthorization) {
  expect_error(check(ecs_request(), clock_.now()), ErrorCode::kMissingAuthentication,
               "Missing Authentication Token");
}

TEST_F(SigV4Verify, RejectsAMissingDate) {
  auto request = signed_ecs_request();
  std::erase_if(request.headers, [](const auto& header) { return header.first == "X-Amz-Date"; });
  auto result = check(request, clock_.now());
  expect_error(result, ErrorCode::kIncompleteSignature);
  EXPECT_TRUE(result.error().message.starts_with(
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
      "Authorization=AWS4-HMAC-SHA256 Credential="));
}

TEST_F(SigV4Verify, RejectsAnUnparsableDate) {
  auto request = ecs_request();
  request.headers.emplace_back("X-Amz-Date", "2015-08-30T12:36:00Z");
  sign_with(request, {"host", "x-amz-date"});
  expect_error(check(request, clock_.now()), ErrorCode::kIncompleteSignature,
               "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See "
               "http://en.wikipedia.org/wiki/ISO_8601");
}

TEST_F(SigV4Verify, AcceptsTheHttpDateHeaderWhenXAmzDateIsAbsent) {
  auto request = ecs_request();
  request.headers.emplace_back("Date", "Sun, 30 Aug 2015 12:36:00 GMT");
  sign_with(request, {"date", "host"});
  auto caller = check(request, clock_.now());
  ASSERT_TRUE(caller.has_value()) << caller.error().message;
}

TEST_F(SigV4Verify, RejectsASignedHeaderThatIsMissing) {
  auto request = ecs_request();
  request.headers.emplace_back("X-Amz-Date", std::string(kSuiteDate));
  request.headers.emplace_back("X-Custom", "1");
  sign_with(request, {"host", "x-amz-date", "x-custom"});
  std::erase_if(request.headers, [](const auto& header) { return header.first == "X-Custom"; });
  expect_error(check(request, clock_.now()), ErrorCode::kIncompleteSignature,
               "Signed header 'x-custom' is not present in the request.");
}

TEST_F(SigV4Verify, RejectsMalformedAuthorization) {
  const std::vector<std::string> malformed = {
      "Bearer abc",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/ecs/aws4_request, "
      "SignedHeaders=host;x-amz-date, Signature=00",
      "AWS4-HMAC-SHA256 garbage",
  };
  for (const auto& header : malformed) {
    auto request = ecs_request();
    request.headers.emplace_back("X-Amz-Date", std::string(kSuiteDate));
    request.headers.emplace_back("Authorization", header);
    expect_error(check(request, clock_.now()), ErrorCode::kIncompleteSignature);
  }
}

TEST_F(SigV4Verify, RejectsATamperedBody) {
  auto request = signed_ecs_request();
  request.payload = R"({"maxResults":99})";
  expect_error(check(request, clock_.now()), ErrorCode::kInvalidSignature, kMismatchMessage);
}

TEST_F(SigV4Verify, RejectsABodyThatDoesNotMatchItsDeclaredHash) {
  auto request = ecs_request();
  request.headers.emplace_back("X-Amz-Content-Sha256", sha256_hex(kBody));
  sign_request(request, kAccessKeyId, kSecret, kRegion, "ecs", suite_time());
  ASSERT_TRUE(check(request, clock_.now()).has_value());
  request.payload = R"({"maxResults":99})";
  expect_error(check(request, clock_.now()), ErrorCode::kInvalidSignature,
               "The provided 'x-amz-content-sha256' header does not match what was computed.");
}

TEST_F(SigV4Verify, AcceptsAnUnsignedPayload) {
  auto request = ecs_request();
  request.headers.emplace_back("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
  sign_request(request, kAccessKeyId, kSecret, kRegion, "ecs", suite_time());
  request.payload = R"({"anything":"goes"})";
  auto caller = check(request, clock_.now());
  ASSERT_TRUE(caller.has_value()) << caller.error().message;
}

TEST_F(SigV4Verify, RejectsTamperedHeadersAndTargets) {
  auto request = signed_ecs_request();
  for (auto& header : request.headers) {
    if (header.first == "X-Amz-Target") header.second = "AmazonEC2ContainerServiceV20141113.Bad";
  }
  expect_error(check(request, clock_.now()), ErrorCode::kInvalidSignature, kMismatchMessage);

  request = signed_ecs_request();
  request.target = "/?extra=1";
  expect_error(check(request, clock_.now()), ErrorCode::kInvalidSignature, kMismatchMessage);
}

TEST_F(SigV4Verify, RejectsAnUnsignedHost) {
  auto request = ecs_request();
  request.headers.emplace_back("X-Amz-Date", std::string(kSuiteDate));
  sign_with(request, {"x-amz-date"});
  expect_error(check(request, clock_.now()), ErrorCode::kInvalidSignature,
               "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
}

TEST_F(SigV4Verify, RejectsAScopeDateThatIsNotTheRequestDate) {
  auto request = ecs_request();
  request.headers.emplace_back("X-Amz-Date", std::string(kSuiteDate));
  sign_with(request, {"host", "x-amz-date"}, "20150831");
  expect_error(check(request, clock_.now()), ErrorCode::kInvalidSignature, kMismatchMessage);
}

TEST_F(SigV4Verify, ResigningReplacesDateAndAuthorization) {
  auto request = signed_ecs_request();
  sign_request(request, kAccessKeyId, kSecret, kRegion, "ecs",
               suite_time() + std::chrono::minutes(1));
  auto count = [&](std::string_view name) {
    return std::count_if(request.headers.begin(), request.headers.end(),
                         [&](const auto& header) { return header.first == name; });
  };
  EXPECT_EQ(count("X-Amz-Date"), 1);
  EXPECT_EQ(count("Authorization"), 1);
  auto caller = check(request, clock_.now());
  ASSERT_TRUE(caller.has_value()) << caller.error().message;
}

}  // namespace
}  // namespace wharf::aws

// Unit tests for the EC2 Query protocol: form decoding, XML encoding, errors and routing.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

#include "aws/query_api.hpp"
#include "aws/service_model.hpp"
#include "aws/sigv4.hpp"

namespace wharf::aws {
namespace {

namespace bh = http::beast_http;

const TimePoint kNow = TimePoint(std::chrono::seconds(1'700'000'000));
constexpr std::string_view kNamespace = "http://ec2.amazonaws.com/doc/2016-11-15/";
constexpr std::string_view kFormType = "application/x-www-form-urlencoded; charset=utf-8";

QueryService ec2_service() {
  return QueryService(ServiceModel::ec2(), "ec2", "2016-11-15", std::string(kNamespace));
}

std::string code_of(std::string_view xml) {
  auto begin = xml.find("<Code>");
  auto end = xml.find("</Code>");
  if (begin == std::string_view::npos || end == std::string_view::npos) return "(no code)";
  return std::string(xml.substr(begin + 6, end - begin - 6));
}

// ---- decoding: the bodies below are what botocore 1.43's EC2Serializer sends ----

TEST(QueryDecodeTest, NestedListsStructuresIntegersAndBooleans) {
  QueryService service = ec2_service();
  auto input = service.decode_input(
      "AuthorizeSecurityGroupIngress",
      "Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1&IpPermissions.1."
      "IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80&IpPermissions.1."
      "IpRanges.1.CidrIp=0.0.0.0%2F0&IpPermissions.1.IpRanges.1.Description=web+%26+more&"
      "IpPermissions.1.Groups.1.GroupId=sg-2&IpPermissions.2.IpProtocol=-1&IpPermissions.2."
      "FromPort=-1&IpPermissions.2.Ipv6Ranges.1.CidrIpv6=%3A%3A%2F0&DryRun=false");
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(*input, boost::json::parse(R"({
    "GroupId": "sg-1",
    "IpPermissions": [
      {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
       "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "web & more"}],
       "UserIdGroupPairs": [{"GroupId": "sg-2"}]},
      {"IpProtocol": "-1", "FromPort": -1, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}],
    "DryRun": false})"))
      << boost::json::serialize(*input);
  EXPECT_TRUE(input->at("IpPermissions").at(0).at("FromPort").is_int64());
}

TEST(QueryDecodeTest, FiltersAndIdListsFollowTheirLocationNames) {
  QueryService service = ec2_service();
  auto input = service.decode_input(
      "DescribeSecurityGroups",
      "Action=DescribeSecurityGroups&Version=2016-11-15&Filter.1.Name=vpc-id&Filter.1.Value.1="
      "vpc-1&Filter.1.Value.2=vpc-2&Filter.2.Name=group-name&Filter.2.Value.1=web&GroupId.1=sg-1&"
      "MaxResults=5&DryRun=true");
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(*input, boost::json::parse(R"({
    "Filters": [{"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]},
                {"Name": "group-name", "Values": ["web"]}],
    "GroupIds": ["sg-1"], "MaxResults": 5, "DryRun": true})"))
      << boost::json::serialize(*input);
}

TEST(QueryDecodeTest, ListElementsAreOrderedByNumberNotText) {
  QueryService service = ec2_service();
  std::string form;
  for (int element = 1; element <= 11; ++element) {
    form += "GroupId." + std::to_string(element) + "=sg-" + std::to_string(element) + "&";
  }
  auto input = service.decode_input("DescribeSecurityGroups", form);
  ASSERT_TRUE(input.has_value()) << input.error().message;
  const auto& ids = input->at("GroupIds").as_array();
  ASSERT_EQ(ids.size(), 11u);
  EXPECT_EQ(ids[1], "sg-2");
  EXPECT_EQ(ids[10], "sg-11");
}

TEST(QueryDecodeTest, CapitalisedLocationNamesAndRenamedMembers) {
  QueryService service = ec2_service();
  auto input = service.decode_input(
      "CreateSecurityGroup",
      "Action=CreateSecurityGroup&Version=2016-11-15&GroupName=web&GroupDescription=d&VpcId=vpc-"
      "1&TagSpecification.1.ResourceType=security-group&TagSpecification.1.Tag.1.Key=Name&"
      "TagSpecification.1.Tag.1.Value=web");
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(*input, boost::json::parse(R"({
    "GroupName": "web", "Description": "d", "VpcId": "vpc-1",
    "TagSpecifications": [{"ResourceType": "security-group",
                           "Tags": [{"Key": "Name", "Value": "web"}]}]})"))
      << boost::json::serialize(*input);
}

TEST(QueryDecodeTest, MalformedParametersAreClientErrors) {
  QueryService service = ec2_service();
  struct Case {
    const char* name;
    const char* form;
    ErrorCode code;
  };
  const Case cases[] = {
      {"not an integer", "MaxResults=five", ErrorCode::kInvalidParameter},
      {"an integer with junk", "MaxResults=5x", ErrorCode::kInvalidParameter},
      {"an integer beyond 64 bits", "MaxResults=99999999999999999999",
       ErrorCode::kInvalidParameter},
      {"not a boolean", "DryRun=yes", ErrorCode::kInvalidParameter},
      {"a list index that is not a number", "GroupId.x=sg-1", ErrorCode::kInvalidParameter},
      {"a list index of zero", "GroupId.0=sg-1", ErrorCode::kInvalidParameter},
      {"a list sent as a scalar", "GroupId=sg-1", ErrorCode::kInvalidParameter},
      {"bad percent-encoding", "GroupName=%zz", ErrorCode::kSerialization},
  };
  for (const Case& test_case : cases) {
    auto input = service.decode_input("DescribeSecurityGroups", test_case.form);
    ASSERT_FALSE(input.has_value()) << test_case.name;
    EXPECT_EQ(input.error().code, test_case.code)
        << test_case.name << ": " << input.error().message;
  }
  EXPECT_EQ(service.decode_input("NoSuchAction", "").error().code, ErrorCode::kUnknownOperation);
}

TEST(QueryDecodeTest, TheFormEndsWhereItsViewEnds) {
  // A GET's parameters are a view into the request target; Boost.URL 1.81 alone would read on.
  QueryService service = ec2_service();
  std::string text = "GroupName=web&GroupDescription=dXYZ";
  auto input = service.decode_input("CreateSecurityGroup",
                                    std::string_view(text).substr(0, text.size() - 3));
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(input->at("Description"), "d");
}

TEST(QueryDecodeTest, UnknownParametersAreIgnored) {
  QueryService service = ec2_service();
  auto input = service.decode_input("DescribeVpcs", "Action=DescribeVpcs&Colour=blue&Foo.1.Bar=2");
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_TRUE(input->empty());
}

TEST(QueryServiceTest, OnlyModelledOperationsCanBeAdded) {
  QueryService service = ec2_service();
  auto nothing = [](const CallContext&, const boost::json::object&, JsonReply) {};
  EXPECT_NO_THROW(service.add("DescribeVpcs", nothing));
  EXPECT_THROW(service.add("RunInstances", nothing), std::invalid_argument);
}

// ---- encoding ----

TEST(QueryEncodeTest, DescribeSecurityGroupsNestsListsOfStructures) {
  QueryService service = ec2_service();
  auto output = boost::json::parse(R"({
    "SecurityGroups": [{
      "GroupId": "sg-1", "GroupName": "web", "Description": "a <b> & 'c'",
      "OwnerId": "123456789012", "VpcId": "vpc-1",
      "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                         "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.0.0.0/8"}],
                         "UserIdGroupPairs": [{"GroupId": "sg-2", "UserId": "123456789012"}]}],
      "IpPermissionsEgress": [],
      "Tags": [{"Key": "Name", "Value": "web"}]}],
    "NextToken": null})");
  auto xml = service.encode_output("DescribeSecurityGroups", output.as_object(), "req-1");
  ASSERT_TRUE(xml.has_value()) << xml.error().message;
  EXPECT_EQ(
      *xml,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
      "<DescribeSecurityGroupsResponse "
      "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-1</requestId>"
      "<securityGroupInfo><item><groupId>sg-1</groupId><ipPermissionsEgress></ipPermissionsEgress>"
      "<tagSet><item><key>Name</key><value>web</value></item></tagSet>"
      "<vpcId>vpc-1</vpcId><ownerId>123456789012</ownerId><groupName>web</groupName>"
      "<groupDescription>a &lt;b&gt; &amp; &apos;c&apos;</groupDescription>"
      "<ipPermissions><item><ipProtocol>tcp</ipProtocol><fromPort>80</fromPort>"
      "<toPort>80</toPort><groups><item><userId>123456789012</userId>"
      "<groupId>sg-2</groupId></item></groups><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp>"
      "</item><item><cidrIp>10.0.0.0/8</cidrIp></item></ipRanges></item></ipPermissions>"
      "</item></securityGroupInfo></DescribeSecurityGroupsResponse>");
}

TEST(QueryEncodeTest, CreateSecurityGroup) {
  QueryService service = ec2_service();
  auto xml = service.encode_output("CreateSecurityGroup",
                                   boost::json::object{{"GroupId", "sg-0abc"}}, "req-2");
  ASSERT_TRUE(xml.has_value()) << xml.error().message;
  EXPECT_EQ(*xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<CreateSecurityGroupResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
            "<requestId>req-2</requestId><groupId>sg-0abc</groupId>"
            "</CreateSecurityGroupResponse>");
}

TEST(QueryEncodeTest, AnOperationWithoutOutputAnswersItsRequestId) {
  QueryService service = ec2_service();
  auto xml = service.encode_output("DeleteSubnet", {}, "req-3");
  ASSERT_TRUE(xml.has_value()) << xml.error().message;
  EXPECT_EQ(*xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<DeleteSubnetResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
            "<requestId>req-3</requestId></DeleteSubnetResponse>");
}

TEST(QueryEncodeTest, OutputThatDoesNotFitTheModelIsAnInternalError) {
  QueryService service = ec2_service();
  struct Case {
    const char* name;
    const char* output;
    const char* message_part;
  };
  const Case cases[] = {
      {"a wire name instead of the member name", R"({"groupId": "sg-1"})", "'groupId'"},
      {"a string for a list", R"({"SecurityGroups": "sg-1"})", "SecurityGroups is not an array"},
      {"a string for an integer",
       R"({"SecurityGroups": [{"IpPermissions": [{"FromPort": "80"}]}]})",
       "SecurityGroups[0].IpPermissions[0].FromPort is not an integer"},
  };
  for (const Case& test_case : cases) {
    auto xml = service.encode_output("DescribeSecurityGroups",
                                     boost::json::parse(test_case.output).as_object(), "r");
    ASSERT_FALSE(xml.has_value()) << test_case.name;
    EXPECT_EQ(xml.error().code, ErrorCode::kInternal) << test_case.name;
    EXPECT_NE(xml.error().message.find(test_case.message_part), std::string::npos)
        << test_case.name << ": " << xml.error().message;
  }
  EXPECT_FALSE(service.encode_output("DeleteSubnet", {{"Return", true}}, "r").has_value());
}

// Traits EC2's subset does not use yet: timestamps, doubles, queryName, flattened lists.
constexpr std::string_view kProbeModel = R"({
  "metadata": {"apiVersion": "2016-11-15", "protocol": "ec2"},
  "operations": {"Probe": {"name": "Probe", "input": {"shape": "ProbeRequest"},
                           "output": {"shape": "ProbeResult"}}},
  "shapes": {
    "ProbeRequest": {"type": "structure", "members": {
      "When": {"shape": "Time"}, "Ratio": {"shape": "Double"},
      "Names": {"shape": "Names", "queryName": "Name", "locationName": "ignored"},
      "Count": {"shape": "Long", "locationName": "count"}}},
    "ProbeResult": {"type": "structure", "members": {
      "When": {"shape": "Time", "locationName": "when"},
      "Ratio": {"shape": "Double", "locationName": "ratio"},
      "Flat": {"shape": "FlatNames", "locationName": "flat"}}},
    "Names": {"type": "list", "member": {"shape": "String", "locationName": "item"}},
    "FlatNames": {"type": "list", "member": {"shape": "String", "locationName": "name"},
                  "flattened": true},
    "Time": {"type": "timestamp"}, "Double": {"type": "double"}, "Long": {"type": "long"},
    "String": {"type": "string"}}})";

TEST(QueryCodecTest, TimestampsDoublesQueryNamesAndFlattenedLists) {
  auto model = ServiceModel::parse(kProbeModel);
  ASSERT_TRUE(model.has_value()) << model.error().message;
  QueryService service(*model, "probe", "2016-11-15", "urn:probe");
  auto input = service.decode_input(
      "Probe", "Name.1=a&Name.2=b+c&When=2024-05-01T12%3A30%3A45Z&Ratio=0.5&Count=8589934592");
  ASSERT_TRUE(input.has_value()) << input.error().message;
  EXPECT_EQ(*input, boost::json::parse(R"({"Names": ["a", "b c"], "When": "2024-05-01T12:30:45Z",
                                           "Ratio": 0.5, "Count": 8589934592})"))
      << boost::json::serialize(*input);

  auto xml = service.encode_output(
      "Probe",
      boost::json::parse(R"({"When": 1714566645.5, "Ratio": 0.25, "Flat": ["x", "y"]})")
          .as_object(),
      "r");
  ASSERT_TRUE(xml.has_value()) << xml.error().message;
  EXPECT_EQ(*xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ProbeResponse xmlns=\"urn:probe\">"
            "<requestId>r</requestId><when>2024-05-01T12:30:45.500Z</when><ratio>0.25</ratio>"
            "<name>x</name><name>y</name></ProbeResponse>");
}

// ---- errors ----

TEST(QueryErrorTest, TheDocumentCarriesTheCodeMessageAndRequestId) {
  EXPECT_EQ(query_error_body(Error{ErrorCode::kNotFound, "The security group 'sg-1' <gone>",
                                   "InvalidGroup.NotFound"},
                             "ec2", "req-9"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>"
            "<Code>InvalidGroup.NotFound</Code>"
            "<Message>The security group &apos;sg-1&apos; &lt;gone&gt;</Message>"
            "</Error></Errors><RequestID>req-9</RequestID></Response>");
  struct Case {
    ErrorCode code;
    const char* wire;
  };
  const Case cases[] = {
      {ErrorCode::kInvalidParameter, "InvalidParameterValue"},
      {ErrorCode::kMissingParameter, "MissingParameter"},
      {ErrorCode::kUnknownOperation, "InvalidAction"},
      {ErrorCode::kAccessDenied, "UnauthorizedOperation"},
      {ErrorCode::kInvalidSignature, "AuthFailure"},
      {ErrorCode::kUnrecognizedClient, "AuthFailure"},
      {ErrorCode::kResourceInUse, "DependencyViolation"},
      {ErrorCode::kInternal, "InternalError"},
  };
  for (const Case& test_case : cases) {
    EXPECT_EQ(code_of(query_error_body(Error{test_case.code, "m"}, "ec2", "r")), test_case.wire);
  }
}

// ---- end to end through the router ----

class QueryRouterTest : public ::testing::Test {
 protected:
  QueryRouterTest()
      : clock_(kNow),
        router_(credentials_, clock_),
        ec2_(ec2_service()),
        ecs_(ServiceModel::ecs(), "ecs", "1.1") {
    credentials_.add({"AKIDTEST", "secret", "123456789012", "arn:aws:iam::123456789012:root"});
    ec2_.add("CreateSecurityGroup",
             [this](const CallContext& context, const boost::json::object& input, JsonReply reply) {
               last_context_ = context;
               last_input_ = input;
               reply(boost::json::object{{"GroupId", "sg-0abc"}});
             });
    ec2_.add("DescribeVpcs", [](const CallContext&, const boost::json::object&, JsonReply reply) {
      reply(boost::json::object{{"Vpcs", boost::json::array{boost::json::object{
                                             {"VpcId", "vpc-1"}, {"IsDefault", true}}}}});
    });
    ec2_.add("DeleteSecurityGroup",
             [](const CallContext&, const boost::json::object&, JsonReply reply) {
               reply(fail_as(ErrorCode::kNotFound, "InvalidGroup.NotFound",
                             "The security group 'sg-9' does not exist"));
             });
    ec2_.add("DeleteSubnet", [](const CallContext&, const boost::json::object&, JsonReply) {
      throw std::runtime_error("boom");
    });
    ec2_.add("CreateTags", [](const CallContext&, const boost::json::object&, JsonReply reply) {
      reply(boost::json::object{{"Bogus", 1}});
    });
    ecs_.add("ListClusters", [](const CallContext&, const boost::json::object&, JsonReply reply) {
      reply(boost::json::object{{"clusterArns", boost::json::array{}}});
    });
    router_.add_query_service(ec2_);
    router_.add_service(ecs_);
  }

  http::Response send(bh::verb method, std::string target, std::string body,
                      std::vector<std::pair<std::string, std::string>> headers,
                      std::string service = "ec2", std::string secret = "secret",
                      bool sign = true) {
    SignableRequest signable;
    signable.method = std::string(bh::to_string(method));
    signable.target = target;
    signable.headers = std::move(headers);
    signable.headers.emplace_back("Host", "localhost");
    signable.payload = body;
    if (sign) sign_request(signable, "AKIDTEST", secret, "eu-west-1", service, kNow);
    http::Request request{method, target, 11};
    for (const auto& [name, value] : signable.headers) request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    http::Response out;
    router_.handle(std::move(request), [&](http::Reply reply) { out = std::move(reply.response); });
    return out;
  }

  http::Response post(std::string form, std::string service = "ec2", std::string secret = "secret",
                      bool sign = true) {
    return send(bh::verb::post, "/", std::move(form), {{"Content-Type", std::string(kFormType)}},
                std::move(service), std::move(secret), sign);
  }

  ManualClock clock_;
  CredentialStore credentials_;
  ApiRouter router_;
  QueryService ec2_;
  JsonService ecs_;
  CallContext last_context_;
  boost::json::object last_input_;
};

TEST_F(QueryRouterTest, ASignedFormPostReachesTheOperation) {
  auto response = post(
      "Action=CreateSecurityGroup&Version=2016-11-15&GroupName=web&GroupDescription=d&VpcId=vpc-1");
  EXPECT_EQ(response.result(), bh::status::ok) << response.body();
  EXPECT_EQ(response[bh::field::content_type], "text/xml;charset=UTF-8");
  std::string request_id(response["x-amzn-RequestId"]);
  EXPECT_FALSE(request_id.empty());
  EXPECT_EQ(response.body(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<CreateSecurityGroupResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
            "<requestId>" +
                request_id +
                "</requestId><groupId>sg-0abc</groupId></CreateSecurityGroupResponse>");
  EXPECT_EQ(last_context_.operation, "CreateSecurityGroup");
  EXPECT_EQ(last_context_.region, "eu-west-1");
  EXPECT_EQ(last_context_.account_id, "123456789012");
  EXPECT_EQ(last_context_.principal_arn, "arn:aws:iam::123456789012:root");
  EXPECT_EQ(last_context_.request_id, request_id);
  EXPECT_EQ(last_input_,
            boost::json::parse(R"({"GroupName": "web", "Description": "d", "VpcId": "vpc-1"})"));
}

TEST_F(QueryRouterTest, ASignedGetWithActionIsServedToo) {
  auto response = send(bh::verb::get, "/?Action=DescribeVpcs&Version=2016-11-15", "", {});
  EXPECT_EQ(response.result(), bh::status::ok) << response.body();
  EXPECT_NE(response.body().find("<vpcSet><item><isDefault>true</isDefault><vpcId>vpc-1</vpcId>"
                                 "</item></vpcSet>"),
            std::string::npos)
      << response.body();
}

TEST_F(QueryRouterTest, ErrorsAreEc2XmlWithTheirCodes) {
  struct Case {
    const char* name;
    http::Response response;
    bh::status status;
    const char* code;
  };
  const Case cases[] = {
      {"handler error with an exact code",
       post("Action=DeleteSecurityGroup&Version=2016-11-15&GroupId=sg-9"), bh::status::bad_request,
       "InvalidGroup.NotFound"},
      {"missing required member", post("Action=CreateSecurityGroup&GroupName=web"),
       bh::status::bad_request, "MissingParameter"},
      {"a boolean that is not", post("Action=CreateTags&ResourceId.1=sg-1&Tag.1.Key=a&DryRun=no"),
       bh::status::bad_request, "InvalidParameterValue"},
      {"enum violation",
       post("Action=CreateSecurityGroup&GroupName=web&GroupDescription=d&"
            "TagSpecification.1.ResourceType=spaceship"),
       bh::status::bad_request, "InvalidParameterValue"},
      {"no action", post("Version=2016-11-15"), bh::status::bad_request, "InvalidAction"},
      {"unknown action", post("Action=RunInstances"), bh::status::bad_request, "InvalidAction"},
      {"action outside the model", post("Action=NoSuchThing"), bh::status::bad_request,
       "InvalidAction"},
      {"another api version", post("Action=DescribeVpcs&Version=2014-01-01"),
       bh::status::bad_request, "InvalidParameterValue"},
      {"handler throws", post("Action=DeleteSubnet&SubnetId=subnet-1"),
       bh::status::internal_server_error, "InternalError"},
      {"handler output outside the model", post("Action=CreateTags&ResourceId.1=sg-1&Tag.1.Key=a"),
       bh::status::internal_server_error, "InternalError"},
      {"wrong secret", post("Action=DescribeVpcs", "ec2", "wrong"), bh::status::bad_request,
       "AuthFailure"},
      {"unsigned", post("Action=DescribeVpcs", "ec2", "secret", false), bh::status::bad_request,
       "MissingAuthenticationToken"},
      {"scoped to a service with no query api", post("Action=DescribeVpcs", "iam"),
       bh::status::bad_request, "InvalidAction"},
  };
  for (const Case& test_case : cases) {
    EXPECT_EQ(test_case.response.result(), test_case.status) << test_case.name;
    EXPECT_EQ(code_of(test_case.response.body()), test_case.code)
        << test_case.name << ": " << test_case.response.body();
    EXPECT_EQ(test_case.response[bh::field::content_type], "text/xml;charset=UTF-8")
        << test_case.name;
    EXPECT_NE(
        test_case.response.body().find(
            "<RequestID>" + std::string(test_case.response["x-amzn-RequestId"]) + "</RequestID>"),
        std::string::npos)
        << test_case.name;
  }
}

TEST_F(QueryRouterTest, JsonRequestsStillGoToJsonServices) {
  auto response = send(bh::verb::post, "/", "{}",
                       {{"Content-Type", "application/x-amz-json-1.1"},
                        {"X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters"}},
                       "ecs");
  EXPECT_EQ(response.result(), bh::status::ok) << response.body();
  EXPECT_EQ(response.body(), R"({"clusterArns":[]})");
}

TEST_F(QueryRouterTest, AnOversizedFormIsRefusedInXml) {
  http::RequestHeader header;
  header.method(bh::verb::post);
  header.target("/");
  header.set(bh::field::content_type, kFormType);
  auto response = router_.payload_too_large(header, 1024);
  EXPECT_EQ(code_of(response.body()), "RequestEntityTooLarge") << response.body();
}

TEST(QueryRequestTest, RecognisesFormPostsAndActionGets) {
  auto header = [](bh::verb method, std::string target, std::string type) {
    http::RequestHeader out;
    out.method(method);
    out.target(target);
    if (!type.empty()) out.set(bh::field::content_type, type);
    return out;
  };
  EXPECT_TRUE(is_query_request(header(bh::verb::post, "/", std::string(kFormType))));
  EXPECT_TRUE(is_query_request(header(bh::verb::post, "/", "Application/X-WWW-Form-Urlencoded")));
  EXPECT_TRUE(is_query_request(header(bh::verb::get, "/?Version=1&Action=DescribeVpcs", "")));
  EXPECT_FALSE(is_query_request(header(bh::verb::post, "/", "application/x-amz-json-1.1")));
  EXPECT_FALSE(is_query_request(header(bh::verb::get, "/?Actions=1", "")));
  EXPECT_FALSE(is_query_request(header(bh::verb::get, "/v2/", "")));
}

}  // namespace
}  // namespace wharf::aws

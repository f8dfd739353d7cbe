// Table tests of the cluster query language: what parses, where errors point, what matches.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "scheduler/query.hpp"

namespace wharf::scheduler {
namespace {

using namespace std::chrono_literals;

TEST(QueryParse, AcceptsTheEcsGrammar) {
  const char* const cases[] = {
      // The examples of the ECS documentation.
      "attribute:ecs.instance-type == t2.small",
      "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
      "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
      "task:group == service:production",
      "not(task:group == database)",
      "runningTasksCount == 1",
      "agentVersion < 1.14.5",
      "registeredAt < 2018-02-13",
      "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
      "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a",
      // Every operator, in both spellings.
      "attribute:a equals x",
      "attribute:a != x",
      "attribute:a not_equals x",
      "attribute:a > 1",
      "attribute:a greater_than 1",
      "attribute:a >= 1",
      "attribute:a greater_than_equal 1",
      "attribute:a < 1",
      "attribute:a less_than 1",
      "attribute:a <= 1",
      "attribute:a less_than_equal 1",
      "attribute:a exists",
      "attribute:a !exists",
      "attribute:a not_exists",
      "attribute:a not_in [x]",
      "attribute:a !in [x, y, z]",
      "attribute:a matches x.*",
      "attribute:a !~ ^x",
      "attribute:a not_matches x",
      // Connectives, precedence, spacing, quoting.
      "attribute:ecs.os-type == linux and (task:group == service:web or attribute:b not_exists)",
      "attribute:a == 1 && attribute:b == 2 || attribute:c == 3",
      "attribute:a==1&&attribute:b!=2",
      "attribute:a EQUALS x AND NOT attribute:b EXISTS",
      "!(attribute:a == 1)",
      "! attribute:a exists",
      "((attribute:a == 1))",
      "not not attribute:a exists",
      "attribute:stack == \"prod west\"",
      "attribute:stack == 'a \"quoted\" word'",
      "attribute:ecs.instance-type =~ (t2|m5)\\.large",
      "(attribute:ecs.instance-type =~ (t2|m5).* )",
      "attribute:path\\name/x_y-z.w exists",
      // Subject-specific values.
      "agentConnected == false",
      "agentConnected in [true, FALSE]",
      "agentConnected =~ t.*",
      "agentVersion >= v1.2",
      "registeredAt >= 2018-06-18T22:28:28+00:00",
      "registeredAt == 2018-06-18T22:28:28Z",
      "registeredAt != 2018-06-18T22:28:28",
      "registeredAt > 2018-06-18T22:28:28-05:30",
      "runningTasksCount <= -1",
      "ec2InstanceId !in [i-1]",
      "ec2InstanceId =~ i-0.*",
      "task:group matches service:.*",
      "task:group exists",
      "task:group !exists",
      "  attribute:a == 1  ",
  };
  for (const char* text : cases) {
    auto query = Query::parse(text);
    EXPECT_TRUE(query.has_value()) << text << ": " << query.error().message;
  }
}

TEST(QueryParse, NamesThePositionAndWhatWasExpected) {
  struct Case {
    std::string text;
    std::string message;  // a part of the error message
  };
  const Case cases[] = {
      {"",
       "at position 1: expected a subject (agentConnected, agentVersion, attribute:NAME, "
       "ec2InstanceId, registeredAt, runningTasksCount, task:group), found the end of the "
       "expression"},
      {"foo == bar", "at position 1: expected a subject"},
      {"ATTRIBUTE:a == 1", "at position 1: expected a subject"},
      {"task:groups == x", "at position 1: expected a subject"},
      {"attribute: == a", "at position 1: expected an attribute name"},
      {"attribute:a:b == a", "at position 1: expected an attribute name"},
      {"attribute:ecs.instance-type", "at position 28: expected an operator"},
      {"attribute:ecs.instance-type equal t2",
       "at position 29: expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, "
       "=~, !~), found \"equal\""},
      {"attribute:a !inside [x]", "at position 13: expected an operator"},
      {"attribute:a ==", "at position 15: expected a value, found the end of the expression"},
      {"attribute:a == )", "at position 16: expected a value, found \")\""},
      {"attribute:a in a, b", "at position 16: expected \"[\" opening a list of values"},
      {"attribute:a in [a b]", "at position 19: expected \",\" or \"]\", found \"b]\""},
      {"attribute:a in [a,", "at position 19: expected a value"},
      {"attribute:a in [a,]", "at position 19: expected a value, found \"]\""},
      {"attribute:a in []", "at position 17: expected a value"},
      {"attribute:a == [a]", "at position 16: expected a single value"},
      {"(attribute:a == 1", "at position 18: expected \")\""},
      {"attribute:a == 1)", "at position 17: expected \"and\", \"or\" or the end"},
      {"attribute:a == 1 attribute:b == 2", "at position 18: expected \"and\", \"or\""},
      {"attribute:a == 1 and", "at position 21: expected a subject"},
      {"attribute:a == 1 or or attribute:b == 2", "at position 21: expected a subject"},
      {"not", "at position 4: expected a subject"},
      {"()", "at position 2: expected a subject"},
      {"attribute:a == 'open", "at position 16: expected a closing quote"},
      {"attribute:a =~ t2.(", "at position 16: expected a valid regular expression"},
      {"runningTasksCount == many", "at position 22: expected a whole number, found \"many\""},
      {"runningTasksCount == 1.5", "at position 22: expected a whole number"},
      {"registeredAt < 2018-13-01", "at position 16: expected a date"},
      {"registeredAt < 2018-02-30", "at position 16: expected a date"},
      {"registeredAt < 2018-02-13T25:00:00", "at position 16: expected a date"},
      {"registeredAt < 2018-02-13T10:00:00+0100", "at position 16: expected a date"},
      {"agentVersion < latest", "at position 16: expected a version"},
      {"agentVersion < 1..2", "at position 16: expected a version"},
      {"agentConnected == yes", "at position 19: expected true or false"},
      {"agentConnected in [true, maybe]", "at position 26: expected true or false"},
      {"agentConnected > true",
       "at position 16: operator > is not valid for agentConnected (valid: ==, !=, in, !in, =~, "
       "!~)"},
      {"runningTasksCount =~ 1.*",
       "at position 19: operator =~ is not valid for runningTasksCount"},
      {"agentVersion in [1.0]", "at position 14: operator in is not valid for agentVersion"},
      {"registeredAt exists", "at position 14: operator exists is not valid for registeredAt"},
      {"ec2InstanceId exists", "at position 15: operator exists is not valid for ec2InstanceId"},
      {"task:group > a", "at position 12: operator > is not valid for task:group"},
      {"!= attribute:a", "at position 1: expected a subject"},
      {std::string(kMaxQueryDepth + 1, '(') + "attribute:a exists" +
           std::string(kMaxQueryDepth + 1, ')'),
       "at position 33: expression nests deeper than 32 levels"},
  };
  for (const auto& test_case : cases) {
    auto query = Query::parse(test_case.text);
    ASSERT_FALSE(query.has_value()) << test_case.text;
    EXPECT_EQ(query.error().code, ErrorCode::kInvalidParameter) << test_case.text;
    EXPECT_NE(query.error().message.find(test_case.message), std::string::npos)
        << test_case.text << "\n  got: " << query.error().message
        << "\n  want: " << test_case.message;
  }
}

TEST(QueryParse, LongChainsAreFine) {
  std::string text = "attribute:a0 exists";
  for (int term_idx = 1; term_idx < 5000; ++term_idx)
    text += " or attribute:a" + std::to_string(term_idx) + " exists";
  auto query = Query::parse(text);
  ASSERT_TRUE(query.has_value()) << query.error().message;
  ContainerInstance instance;
  instance.attributes = {{"a4999", std::nullopt}};
  EXPECT_TRUE(query->matches(instance));
  instance.attributes = {{"b", std::nullopt}};
  EXPECT_FALSE(query->matches(instance));
}

ContainerInstance sample_instance() {
  ContainerInstance instance;
  instance.arn = "arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc";
  instance.ec2_instance_id = "i-0abc";
  instance.agent_connected = true;
  instance.agent_version = "1.51.0";
  instance.registered_at = TimePoint(std::chrono::sys_days(std::chrono::year{2018} / 6 / 18) + 22h +
                                     28min + 28s + 500ms);
  instance.running_tasks_count = 2;
  instance.attributes = {{"ecs.instance-type", "t2.micro"},
                         {"ecs.availability-zone", "us-east-1a"},
                         {"ecs.os-type", "linux"},
                         {"stack", "prod"},
                         {"flag", std::nullopt},
                         {"cores", "16"}};
  instance.task_groups = {{"service:web", 2}, {"family:batch", 0}};
  return instance;
}

TEST(QueryMatch, EvaluatesAgainstOneInstance) {
  struct Case {
    const char* text;
    bool matches;
  };
  const Case cases[] = {
      {"attribute:ecs.instance-type == t2.micro", true},
      {"attribute:ecs.instance-type == t2.*", false},  // == is literal
      {"attribute:ecs.instance-type =~ t2.*", true},
      {"attribute:ecs.instance-type =~ t2", false},  // the whole value must match
      {"attribute:ecs.instance-type =~ .*micro", true},
      {"attribute:ecs.instance-type !~ m5.*", true},
      {"attribute:ecs.instance-type not_matches t2.*", false},
      {"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true},
      {"attribute:ecs.availability-zone in [us-east-1c]", false},
      {"attribute:ecs.availability-zone not_in [us-east-1a]", false},
      {"attribute:ecs.availability-zone !in [us-east-1b, us-east-1c]", true},
      {"attribute:stack != prod", false},
      {"attribute:stack != dev", true},
      {"attribute:missing == x", false},
      {"attribute:missing != x", false},  // a missing attribute satisfies no comparison
      {"attribute:missing exists", false},
      {"attribute:missing not_exists", true},
      {"attribute:flag exists", true},
      {"attribute:flag == ''", true},
      {"attribute:cores > 8", true},  // numbers compare as numbers
      {"attribute:cores < 100", true},
      {"attribute:cores == 16.0", false},  // equality is textual
      {"attribute:stack > abc", true},     // text compares as text
      {"attribute:stack <= pro", false},
      {"task:group == service:web", true},
      {"task:group == family:batch", false},  // no task of that group is left
      {"task:group != service:web", false},   // every task is in service:web
      {"task:group != service:api", true},
      {"not(task:group == database)", true},
      {"not(task:group == service:web)", false},
      {"task:group =~ service:.*", true},
      {"task:group in [service:api, service:web]", true},
      {"task:group exists", true},
      {"task:group !exists", false},
      {"runningTasksCount == 2", true},
      {"runningTasksCount > 2", false},
      {"runningTasksCount <= 2", true},
      {"runningTasksCount != 3", true},
      {"agentVersion < 1.14.5", false},
      {"agentVersion >= 1.51", true},
      {"agentVersion == 1.51.0", true},
      {"agentVersion > 1.9.9", true},  // 51 > 9: parts compare as numbers
      {"registeredAt < 2018-02-13", false},
      {"registeredAt > 2018-06-18", true},
      {"registeredAt == 2018-06-18T22:28:28Z", true},  // to the second
      {"registeredAt == 2018-06-19T00:28:28+02:00", true},
      {"registeredAt == 2018-06-18T18:28:28-04:00", true},
      {"registeredAt < 2018-06-18T22:28:29", true},
      {"ec2InstanceId in ['i-abcd1234', 'i-0abc']", true},
      {"ec2InstanceId == i-abcd1234", false},
      {"ec2InstanceId =~ i-0.*", true},
      {"agentConnected == true", true},
      {"agentConnected != true", false},
      {"agentConnected in [false]", false},
      {"agentConnected =~ tr.*", true},
      {"attribute:ecs.os-type == linux and (task:group == service:api or attribute:stack == prod)",
       true},
      {"attribute:ecs.os-type == linux and task:group == service:api", false},
      {"attribute:a == x or attribute:stack == prod and attribute:ecs.os-type == windows", false},
      {"(attribute:a == x or attribute:stack == prod) and attribute:ecs.os-type == linux", true},
      {"attribute:stack == prod || attribute:a == x && attribute:b == y", true},
      {"not attribute:stack == prod or attribute:ecs.os-type == linux", true},
      {"not (attribute:stack == prod or attribute:ecs.os-type == linux)", false},
      {"!attribute:stack exists", false},
      {"not not attribute:stack exists", true},
      {"attribute:ecs.instance-type =~ (t2|m5)\\.micro", true},
      {"attribute:ecs.instance-type =~ (m5|c5).*", false},
  };
  const ContainerInstance instance = sample_instance();
  for (const auto& test_case : cases) {
    auto query = Query::parse(test_case.text);
    ASSERT_TRUE(query.has_value()) << test_case.text << ": " << query.error().message;
    EXPECT_EQ(query->matches(instance), test_case.matches) << test_case.text;
  }
}

TEST(QueryMatch, ValuesAbsentFromTheInstanceMatchNothing) {
  ContainerInstance external;  // no EC2 id, no agent version, no tasks
  external.agent_connected = false;
  struct Case {
    const char* text;
    bool matches;
  };
  const Case cases[] = {
      {"ec2InstanceId == i-1", false},  {"ec2InstanceId != i-1", false},
      {"agentVersion < 9.9.9", false},  {"task:group == x", false},
      {"task:group != x", false},       {"task:group !exists", true},
      {"runningTasksCount == 0", true}, {"agentConnected == false", true},
  };
  for (const auto& test_case : cases) {
    auto query = Query::parse(test_case.text);
    ASSERT_TRUE(query.has_value()) << test_case.text;
    EXPECT_EQ(query->matches(external), test_case.matches) << test_case.text;
  }
}

TEST(Query, KnowsWhetherItReadsTasks) {
  struct Case {
    const char* text;
    bool depends_on_tasks;
  };
  const Case cases[] = {
      {"attribute:a exists", false},
      {"agentConnected == true and ec2InstanceId == i-1", false},
      {"attribute:a exists or task:group == x", true},
      {"not(runningTasksCount > 3)", true},
  };
  for (const auto& test_case : cases) {
    auto query = Query::parse(test_case.text);
    ASSERT_TRUE(query.has_value()) << test_case.text;
    EXPECT_EQ(query->depends_on_tasks(), test_case.depends_on_tasks) << test_case.text;
    EXPECT_EQ(query->text(), test_case.text);
  }
}

TEST(Query, CopiesShareTheCompiledForm) {
  auto query = Query::parse("attribute:stack == prod");
  ASSERT_TRUE(query.has_value());
  const Query copy = *query;
  EXPECT_TRUE(copy.matches(sample_instance()));
  EXPECT_EQ(copy.text(), query->text());
}

}  // namespace
}  // namespace wharf::scheduler

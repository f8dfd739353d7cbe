// The ECS cluster query language: parsed once, then evaluated against container instances.
#pragma once

#include <memory>
#include <string_view>

#include "common/error.hpp"
#include "scheduler/snapshot.hpp"

namespace wharf::scheduler {

// The deepest nesting of parentheses and `not` an expression may use.
inline constexpr int kMaxQueryDepth = 32;

// A compiled cluster query, e.g. `attribute:ecs.instance-type =~ t2.* and not(task:group ==
// database)`. Immutable and cheap to copy; safe to share between threads.
//
// Grammar (ECS "Cluster query language"):
//   expression := or_expr
//   or_expr    := and_expr { ("or" | "||") and_expr }
//   and_expr   := unary { ("and" | "&&") unary }
//   unary      := ("not" | "!") unary | "(" expression ")" | predicate
//   predicate  := subject operator [argument]
//   subject    := agentConnected | agentVersion | attribute:NAME | ec2InstanceId | registeredAt
//               | runningTasksCount | task:group
//   argument   := value | "[" value { "," value } "]"     (a list only after in / !in)
//   value      := bare word | 'quoted' | "quoted"
// Operators: == equals, != not_equals, > greater_than, >= greater_than_equal, < less_than,
// <= less_than_equal, exists, !exists not_exists, in, !in not_in, =~ matches, !~ not_matches.
// Keywords are case-insensitive; subjects are not. Each subject accepts the operators ECS lists
// for it. `matches` takes a regular expression that must match the whole value (t2.* matches
// t2.micro), as Java's Pattern.matches does.
//
// Semantics: a subject has zero or more values — an attribute one if the instance has it (an
// attribute without a value reads as ""), task:group one per task group on the instance, the
// other subjects exactly one. A predicate holds when ANY value satisfies it, so a missing
// attribute satisfies neither `== x` nor `!= x`, and `task:group == web` holds when any task on
// the instance is in group web; write anti-affinity as `not(task:group == web)`. `exists` holds
// when there is a value, `!exists` when there is none. Ordering operators compare agentVersion
// as dotted versions, registeredAt as instants (2018-06-18, 2018-06-18T22:28:28,
// 2018-06-18T22:28:28Z, 2018-06-18T22:28:28+00:00; UTC when no offset), runningTasksCount as
// integers, and attribute values as numbers when both sides are numbers, else as text.
class Query {
 public:
  // Errors are kInvalidParameter, naming the 1-based character position and what was expected:
  // `at position 29: expected an operator (==, ...), found "equal"`.
  static Result<Query> parse(std::string_view text);

  bool matches(const ContainerInstance& instance) const;
  // True when the answer can change as tasks are placed (task:group, runningTasksCount), so a
  // cached answer for an instance is stale once a task lands on it.
  bool depends_on_tasks() const;
  std::string_view text() const;

  struct Program;  // the parsed form, private to query.cpp

 private:
  explicit Query(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const Program> program_;
};

}  // namespace wharf::scheduler

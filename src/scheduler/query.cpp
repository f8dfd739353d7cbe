// Parser and evaluator of the ECS cluster query language.
#include "scheduler/query.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "common/text.hpp"

namespace wharf::scheduler {

namespace {

enum class Subject {
  kAgentConnected,
  kAgentVersion,
  kAttribute,
  kEc2InstanceId,
  kRegisteredAt,
  kRunningTasksCount,
  kTaskGroup,
};

enum class Op {
  kEquals,
  kNotEquals,
  kGreaterThan,
  kGreaterThanEqual,
  kLessThan,
  kLessThanEqual,
  kExists,
  kNotExists,
  kIn,
  kNotIn,
  kMatches,
  kNotMatches,
};

struct OpName {
  std::string_view symbol;  // "==", "!in"
  std::string_view word;    // "equals", "not_in"; empty where ECS has none
  Op op;
};

constexpr std::array<OpName, 12> kOps = {{
    {"==", "equals", Op::kEquals},
    {"!=", "not_equals", Op::kNotEquals},
    {">=", "greater_than_equal", Op::kGreaterThanEqual},
    {"<=", "less_than_equal", Op::kLessThanEqual},
    {"=~", "matches", Op::kMatches},
    {"!~", "not_matches", Op::kNotMatches},
    {">", "greater_than", Op::kGreaterThan},
    {"<", "less_than", Op::kLessThan},
    {"!exists", "not_exists", Op::kNotExists},
    {"exists", "", Op::kExists},
    {"!in", "not_in", Op::kNotIn},
    {"in", "", Op::kIn},
}};

std::string_view op_symbol(Op op) {
  for (const auto& name : kOps) {
    if (name.op == op) return name.symbol;
  }
  return "?";
}

constexpr unsigned bit(Op op) {
  return 1u << static_cast<unsigned>(op);
}

constexpr unsigned kEquality = bit(Op::kEquals) | bit(Op::kNotEquals);
constexpr unsigned kOrdering = kEquality | bit(Op::kGreaterThan) | bit(Op::kGreaterThanEqual) |
                               bit(Op::kLessThan) | bit(Op::kLessThanEqual);
constexpr unsigned kSetAndPattern =
    kEquality | bit(Op::kIn) | bit(Op::kNotIn) | bit(Op::kMatches) | bit(Op::kNotMatches);
constexpr unsigned kExistence = bit(Op::kExists) | bit(Op::kNotExists);

struct SubjectRule {
  std::string_view name;
  Subject subject;
  unsigned operators;  // the operators the ECS documentation lists for the subject
};

constexpr std::array<SubjectRule, 7> kSubjects = {{
    {"agentConnected", Subject::kAgentConnected, kSetAndPattern},
    {"agentVersion", Subject::kAgentVersion, kOrdering},
    {"attribute:", Subject::kAttribute, kOrdering | kSetAndPattern | kExistence},
    {"ec2InstanceId", Subject::kEc2InstanceId, kSetAndPattern},
    {"registeredAt", Subject::kRegisteredAt, kOrdering},
    {"runningTasksCount", Subject::kRunningTasksCount, kOrdering},
    {"task:group", Subject::kTaskGroup, kSetAndPattern | kExistence},
}};

constexpr std::string_view kSubjectList =
    "a subject (agentConnected, agentVersion, attribute:NAME, ec2InstanceId, registeredAt, "
    "runningTasksCount, task:group)";
constexpr std::string_view kOperatorList =
    "an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~)";

// The operators of `mask`, in the order the ECS documentation lists them.
std::string allowed_operators(unsigned mask) {
  std::string out;
  for (unsigned op_idx = 0; op_idx <= static_cast<unsigned>(Op::kNotMatches); ++op_idx) {
    const auto op = static_cast<Op>(op_idx);
    if ((mask & bit(op)) == 0) continue;
    if (!out.empty()) out += ", ";
    out += op_symbol(op);
  }
  return out;
}

// Dotted numeric version, "1.14.5"; missing parts compare as 0.
struct Version {
  std::array<std::uint32_t, 4> parts{};
};

std::optional<Version> parse_version(std::string_view text) {
  if (!text.empty() && (text.front() == 'v' || text.front() == 'V')) text.remove_prefix(1);
  Version version;
  std::size_t part_idx = 0;
  while (true) {
    if (part_idx == version.parts.size()) return std::nullopt;
    const char* begin = text.data();
    const char* end = text.data() + text.size();
    auto [next, ec] = std::from_chars(begin, end, version.parts[part_idx]);
    if (ec != std::errc() || next == begin) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(next - begin));
    ++part_idx;
    if (text.empty()) return version;
    if (text.front() != '.') return std::nullopt;
    text.remove_prefix(1);
  }
}

int compare_versions(const Version& left, const Version& right) {
  for (std::size_t part_idx = 0; part_idx < left.parts.size(); ++part_idx) {
    if (left.parts[part_idx] != right.parts[part_idx])
      return left.parts[part_idx] < right.parts[part_idx] ? -1 : 1;
  }
  return 0;
}

bool read_digits(std::string_view text, std::size_t at, std::size_t count, int& out) {
  if (at + count > text.size()) return false;
  out = 0;
  for (std::size_t digit_idx = at; digit_idx < at + count; ++digit_idx) {
    const char c = text[digit_idx];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

// The registeredAt formats ECS documents, as epoch seconds.
std::optional<std::int64_t> parse_timestamp(std::string_view text) {
  int year = 0, month = 0, day = 0;
  if (!read_digits(text, 0, 4, year) || text.size() < 10 || text[4] != '-' || text[7] != '-' ||
      !read_digits(text, 5, 2, month) || !read_digits(text, 8, 2, day))
    return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return std::nullopt;
  std::int64_t seconds =
      std::int64_t{std::chrono::sys_days(date).time_since_epoch().count()} * 86400;
  if (text.size() == 10) return seconds;
  int hour = 0, minute = 0, second = 0;
  if (text.size() < 19 || text[10] != 'T' || text[13] != ':' || text[16] != ':' ||
      !read_digits(text, 11, 2, hour) || !read_digits(text, 14, 2, minute) ||
      !read_digits(text, 17, 2, second) || hour > 23 || minute > 59 || second > 59)
    return std::nullopt;
  seconds += hour * 3600 + minute * 60 + second;
  const std::string_view zone = text.substr(19);
  if (zone.empty() || zone == "Z") return seconds;
  int offset_hours = 0, offset_minutes = 0;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' ||
      !read_digits(zone, 1, 2, offset_hours) || !read_digits(zone, 4, 2, offset_minutes) ||
      offset_hours > 23 || offset_minutes > 59)
    return std::nullopt;
  const int offset = offset_hours * 3600 + offset_minutes * 60;
  return zone[0] == '+' ? seconds - offset : seconds + offset;
}

std::optional<double> parse_number(std::string_view text) {
  double value = 0;
  auto [next, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || next != text.data() + text.size() || !std::isfinite(value))
    return std::nullopt;
  return value;
}

// Attribute values order as numbers when both are numbers, else as text.
int compare_ordered(std::string_view value, std::string_view arg) {
  const auto value_number = parse_number(value);
  const auto arg_number = parse_number(arg);
  if (value_number && arg_number) {
    if (*value_number == *arg_number) return 0;
    return *value_number < *arg_number ? -1 : 1;
  }
  const int order = value.compare(arg);
  return order == 0 ? 0 : (order < 0 ? -1 : 1);
}

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Characters of a subject token: letters, digits and what attribute names may hold.
bool is_subject_char(char c) {
  return is_word_char(c) || c == '-' || c == '.' || c == '/' || c == '\\' || c == ':';
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

struct Predicate {
  Subject subject = Subject::kAttribute;
  std::string attribute_name;
  Op op = Op::kEquals;
  std::vector<std::string> args;
  std::vector<std::int64_t> integer_args;  // runningTasksCount, registeredAt, agentConnected
  std::vector<Version> version_args;       // agentVersion
  std::optional<std::regex> pattern;       // matches, not_matches
};

enum class NodeKind { kPredicate, kAnd, kOr, kNot };

// And / or are n-ary, so a long chain of predicates evaluates in a loop, not a deep recursion.
struct Node {
  NodeKind kind = NodeKind::kPredicate;
  std::uint32_t first = 0;  // the predicate; the operand of not; the first operand in `operands`
  std::uint32_t count = 0;  // how many operands an and / or has
};

}  // namespace

struct Query::Program {
  std::string text;
  std::vector<Node> nodes;
  std::vector<std::uint32_t> operands;  // operands of and / or nodes, each node's in a row
  std::vector<Predicate> predicates;
  std::uint32_t root = 0;
  bool depends_on_tasks = false;
};

namespace {

// Recursive descent over the text; lexing is on demand because what a character means depends
// on where it stands (`!` is `not` before a term and part of `!=` after a subject).
class Parser {
 public:
  Parser(std::string_view text, Query::Program& program) : text_(text), program_(program) {}

  Status parse() {
    auto root = parse_or(0);
    if (!root) return std::unexpected(std::move(root.error()));
    skip_space();
    if (!at_end()) return expected("\"and\", \"or\" or the end of the expression");
    program_.root = *root;
    return {};
  }

 private:
  using NodeResult = Result<std::uint32_t>;

  bool at_end() const { return pos_ >= text_.size(); }
  char peek(std::size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  void skip_space() {
    while (!at_end() && is_space(text_[pos_])) ++pos_;
  }
  std::string_view word_at(std::size_t at) const {
    std::size_t end = at;
    while (end < text_.size() && is_word_char(text_[end])) ++end;
    return text_.substr(at, end - at);
  }

  std::unexpected<Error> expected_at(std::size_t at, std::string_view what) const {
    std::string found = "the end of the expression";
    if (at < text_.size()) {
      std::size_t end = at;
      while (end < text_.size() && !is_space(text_[end]) && end - at < 24) ++end;
      if (end == at) end = at + 1;
      found = "\"" + std::string(text_.substr(at, end - at)) + "\"";
    }
    return invalid("at position " + std::to_string(at + 1) + ": expected " + std::string(what) +
                   ", found " + found);
  }
  std::unexpected<Error> expected(std::string_view what) const { return expected_at(pos_, what); }

  std::uint32_t add_node(NodeKind kind, std::uint32_t first, std::uint32_t count = 0) {
    program_.nodes.push_back(Node{kind, first, count});
    return static_cast<std::uint32_t>(program_.nodes.size() - 1);
  }

  std::uint32_t add_chain(NodeKind kind, const std::vector<std::uint32_t>& chain) {
    if (chain.size() == 1) return chain.front();
    const auto first = static_cast<std::uint32_t>(program_.operands.size());
    program_.operands.insert(program_.operands.end(), chain.begin(), chain.end());
    return add_node(kind, first, static_cast<std::uint32_t>(chain.size()));
  }

  // Consumes `and`/`&&` (or `or`/`||`) when it comes next.
  bool take_connective(std::string_view word, std::string_view symbol) {
    skip_space();
    if (text_.substr(pos_, 2) == symbol) {
      pos_ += 2;
      return true;
    }
    const std::string_view next = word_at(pos_);
    if (!next.empty() && lower(next) == word) {
      pos_ += next.size();
      return true;
    }
    return false;
  }

  NodeResult parse_or(int depth) {
    std::vector<std::uint32_t> chain;
    do {
      auto operand = parse_and(depth);
      if (!operand) return operand;
      chain.push_back(*operand);
    } while (take_connective("or", "||"));
    return add_chain(NodeKind::kOr, chain);
  }

  NodeResult parse_and(int depth) {
    std::vector<std::uint32_t> chain;
    do {
      auto operand = parse_unary(depth);
      if (!operand) return operand;
      chain.push_back(*operand);
    } while (take_connective("and", "&&"));
    return add_chain(NodeKind::kAnd, chain);
  }

  NodeResult parse_unary(int depth) {
    skip_space();
    if (depth >= kMaxQueryDepth) {
      return invalid("at position " + std::to_string(pos_ + 1) + ": expression nests deeper than " +
                     std::to_string(kMaxQueryDepth) + " levels");
    }
    if (peek() == '(') {
      ++pos_;
      auto inner = parse_or(depth + 1);
      if (!inner) return inner;
      skip_space();
      if (peek() != ')') return expected("\")\"");
      ++pos_;
      return inner;
    }
    const std::string_view word = word_at(pos_);
    const bool bang_not = peek() == '!' && peek(1) != '=' && peek(1) != '~';
    if (bang_not || (!word.empty() && lower(word) == "not")) {
      pos_ += bang_not ? 1 : word.size();
      auto operand = parse_unary(depth + 1);
      if (!operand) return operand;
      return add_node(NodeKind::kNot, *operand);
    }
    return parse_predicate();
  }

  NodeResult parse_predicate() {
    Predicate predicate;
    const std::size_t subject_at = pos_;
    std::size_t end = pos_;
    while (end < text_.size() && is_subject_char(text_[end])) ++end;
    const std::string_view token = text_.substr(pos_, end - pos_);
    const SubjectRule* rule = nullptr;
    for (const auto& candidate : kSubjects) {
      const bool is_prefix = candidate.subject == Subject::kAttribute;
      if (is_prefix ? token.starts_with(candidate.name) : token == candidate.name) {
        rule = &candidate;
        break;
      }
    }
    if (rule == nullptr) return expected(kSubjectList);
    predicate.subject = rule->subject;
    if (rule->subject == Subject::kAttribute) {
      predicate.attribute_name = std::string(token.substr(rule->name.size()));
      if (predicate.attribute_name.empty() || predicate.attribute_name.size() > 128 ||
          predicate.attribute_name.find(':') != std::string::npos)
        return expected_at(subject_at, "an attribute name of 1-128 letters, digits, - _ . / \\");
    }
    pos_ = end;

    skip_space();
    const std::size_t op_at = pos_;
    auto op = read_operator();
    if (!op) return expected(kOperatorList);
    if ((rule->operators & bit(*op)) == 0) {
      const std::string subject_name = rule->subject == Subject::kAttribute
                                           ? "attribute:" + predicate.attribute_name
                                           : std::string(rule->name);
      return invalid("at position " + std::to_string(op_at + 1) + ": operator " +
                     std::string(op_symbol(*op)) + " is not valid for " + subject_name +
                     " (valid: " + allowed_operators(rule->operators) + ")");
    }
    predicate.op = *op;
    if (rule->subject == Subject::kTaskGroup || rule->subject == Subject::kRunningTasksCount)
      program_.depends_on_tasks = true;

    if (auto status = read_arguments(predicate); !status) return std::unexpected(status.error());
    program_.predicates.push_back(std::move(predicate));
    return add_node(NodeKind::kPredicate,
                    static_cast<std::uint32_t>(program_.predicates.size() - 1));
  }

  std::optional<Op> read_operator() {
    for (const auto& name : kOps) {
      const bool is_symbolic = !name.symbol.empty() && !is_word_char(name.symbol.front());
      if (!is_symbolic || text_.substr(pos_, name.symbol.size()) != name.symbol) continue;
      // "!in" and "!exists" end at a word boundary, so "!inside" is not "!in".
      if (is_word_char(name.symbol.back()) && is_word_char(peek(name.symbol.size()))) continue;
      pos_ += name.symbol.size();
      return name.op;
    }
    const std::string_view word = word_at(pos_);
    if (word.empty()) return std::nullopt;
    const std::string lowered = lower(word);
    for (const auto& name : kOps) {
      if (lowered == name.word || (is_word_char(name.symbol.front()) && lowered == name.symbol)) {
        pos_ += word.size();
        return name.op;
      }
    }
    return std::nullopt;
  }

  // One value: 'quoted', "quoted" or a bare word. A bare word ends at whitespace, at && or ||,
  // at a `)` that closes nothing opened inside it, and in a list at `,` or `]`.
  Result<std::string> read_value(bool in_list) {
    skip_space();
    const std::size_t start = pos_;
    const char first = peek();
    if (first == '\'' || first == '"') {
      const std::size_t close = text_.find(first, pos_ + 1);
      if (close == std::string_view::npos) return expected_at(start, "a closing quote");
      pos_ = close + 1;
      return std::string(text_.substr(start + 1, close - start - 1));
    }
    if (first == '[') return expected("a single value (a list goes with in or !in)");
    int depth = 0;
    while (!at_end()) {
      const char c = text_[pos_];
      if (is_space(c)) break;
      if (in_list && (c == ',' || c == ']')) break;
      if ((c == '&' && peek(1) == '&') || (c == '|' && peek(1) == '|')) break;
      if (c == '(') ++depth;
      if (c == ')' && depth-- == 0) break;
      ++pos_;
    }
    if (pos_ == start) return expected("a value");
    return std::string(text_.substr(start, pos_ - start));
  }

  Status read_arguments(Predicate& predicate) {
    if (predicate.op == Op::kExists || predicate.op == Op::kNotExists) return {};
    std::vector<std::size_t> positions;
    if (predicate.op == Op::kIn || predicate.op == Op::kNotIn) {
      skip_space();
      if (peek() != '[') return expected("\"[\" opening a list of values");
      ++pos_;
      while (true) {
        skip_space();
        positions.push_back(pos_);
        auto value = read_value(/*in_list=*/true);
        if (!value) return std::unexpected(std::move(value.error()));
        predicate.args.push_back(std::move(*value));
        skip_space();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        if (peek() == ']') {
          ++pos_;
          break;
        }
        return expected("\",\" or \"]\"");
      }
    } else {
      skip_space();
      positions.push_back(pos_);
      auto value = read_value(/*in_list=*/false);
      if (!value) return std::unexpected(std::move(value.error()));
      predicate.args.push_back(std::move(*value));
    }
    return convert_arguments(predicate, positions);
  }

  // Checks each argument against its subject once, so evaluation never parses text twice.
  Status convert_arguments(Predicate& predicate, const std::vector<std::size_t>& positions) {
    if (predicate.op == Op::kMatches || predicate.op == Op::kNotMatches) {
      try {
        predicate.pattern.emplace(predicate.args.front(), std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        return expected_at(positions.front(), "a valid regular expression");
      }
      return {};
    }
    for (std::size_t arg_idx = 0; arg_idx < predicate.args.size(); ++arg_idx) {
      const std::string& arg = predicate.args[arg_idx];
      const std::size_t at = positions[arg_idx];
      switch (predicate.subject) {
        case Subject::kRunningTasksCount: {
          std::int64_t count = 0;
          auto [next, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), count);
          if (ec != std::errc() || next != arg.data() + arg.size())
            return expected_at(at, "a whole number");
          predicate.integer_args.push_back(count);
          break;
        }
        case Subject::kRegisteredAt: {
          auto seconds = parse_timestamp(arg);
          if (!seconds) return expected_at(at, "a date like 2018-06-18 or 2018-06-18T22:28:28Z");
          predicate.integer_args.push_back(*seconds);
          break;
        }
        case Subject::kAgentVersion: {
          auto version = parse_version(arg);
          if (!version) return expected_at(at, "a version like 1.14.5");
          predicate.version_args.push_back(*version);
          break;
        }
        case Subject::kAgentConnected: {
          const std::string lowered = lower(arg);
          if (lowered != "true" && lowered != "false") return expected_at(at, "true or false");
          predicate.integer_args.push_back(lowered == "true" ? 1 : 0);
          break;
        }
        case Subject::kAttribute:
        case Subject::kEc2InstanceId:
        case Subject::kTaskGroup:
          break;
      }
    }
    return {};
  }

  std::string_view text_;
  Query::Program& program_;
  std::size_t pos_ = 0;
};

// Applies a comparison operator, given how the subject's value compares with argument i.
template <typename Compare>
bool apply(Op op, std::size_t arg_count, const Compare& compare) {
  switch (op) {
    case Op::kEquals:
      return compare(0) == 0;
    case Op::kNotEquals:
      return compare(0) != 0;
    case Op::kGreaterThan:
      return compare(0) > 0;
    case Op::kGreaterThanEqual:
      return compare(0) >= 0;
    case Op::kLessThan:
      return compare(0) < 0;
    case Op::kLessThanEqual:
      return compare(0) <= 0;
    case Op::kIn:
    case Op::kNotIn: {
      bool found = false;
      for (std::size_t arg_idx = 0; arg_idx < arg_count && !found; ++arg_idx)
        found = compare(arg_idx) == 0;
      return found == (op == Op::kIn);
    }
    case Op::kExists:
    case Op::kNotExists:
    case Op::kMatches:
    case Op::kNotMatches:
      break;
  }
  return false;
}

bool is_ordering(Op op) {
  return op == Op::kGreaterThan || op == Op::kGreaterThanEqual || op == Op::kLessThan ||
         op == Op::kLessThanEqual;
}

bool test_text(const Predicate& predicate, std::string_view value) {
  if (predicate.pattern) {
    const bool matched = std::regex_match(value.begin(), value.end(), *predicate.pattern);
    return matched == (predicate.op == Op::kMatches);
  }
  const bool ordering = is_ordering(predicate.op);
  return apply(predicate.op, predicate.args.size(), [&](std::size_t arg_idx) {
    const std::string& arg = predicate.args[arg_idx];
    if (ordering) return compare_ordered(value, arg);
    return value == arg ? 0 : 1;
  });
}

bool test_integer(const Predicate& predicate, std::int64_t value) {
  return apply(predicate.op, predicate.integer_args.size(), [&](std::size_t arg_idx) {
    const std::int64_t arg = predicate.integer_args[arg_idx];
    return value == arg ? 0 : (value < arg ? -1 : 1);
  });
}

bool evaluate_predicate(const Predicate& predicate, const ContainerInstance& instance) {
  const bool existence = predicate.op == Op::kExists || predicate.op == Op::kNotExists;
  switch (predicate.subject) {
    case Subject::kAttribute: {
      const Attribute* attribute = instance.find_attribute(predicate.attribute_name);
      if (existence) return (attribute != nullptr) == (predicate.op == Op::kExists);
      if (attribute == nullptr) return false;
      return test_text(predicate, attribute->value ? std::string_view(*attribute->value) : "");
    }
    case Subject::kTaskGroup: {
      bool any = false;
      for (const auto& entry : instance.task_groups) {
        if (entry.count <= 0) continue;
        any = existence || test_text(predicate, entry.group);
        if (any) break;
      }
      if (existence) return any == (predicate.op == Op::kExists);
      return any;
    }
    case Subject::kEc2InstanceId:
      if (instance.ec2_instance_id.empty()) return false;
      return test_text(predicate, instance.ec2_instance_id);
    case Subject::kAgentConnected:
      if (predicate.pattern)
        return test_text(predicate, instance.agent_connected ? "true" : "false");
      return test_integer(predicate, instance.agent_connected ? 1 : 0);
    case Subject::kAgentVersion: {
      const auto version = parse_version(instance.agent_version);
      if (!version) return false;
      return apply(predicate.op, predicate.version_args.size(), [&](std::size_t arg_idx) {
        return compare_versions(*version, predicate.version_args[arg_idx]);
      });
    }
    case Subject::kRegisteredAt: {
      const auto seconds =
          std::chrono::floor<std::chrono::seconds>(instance.registered_at.time_since_epoch());
      return test_integer(predicate, seconds.count());
    }
    case Subject::kRunningTasksCount:
      return test_integer(predicate, instance.running_tasks_count);
  }
  return false;
}

bool evaluate(const Query::Program& program, std::uint32_t node_idx,
              const ContainerInstance& instance) {
  const Node& node = program.nodes[node_idx];
  switch (node.kind) {
    case NodeKind::kPredicate:
      return evaluate_predicate(program.predicates[node.first], instance);
    case NodeKind::kAnd:
    case NodeKind::kOr: {
      const bool want = node.kind == NodeKind::kOr;  // the answer that ends the chain early
      for (std::uint32_t operand_idx = 0; operand_idx < node.count; ++operand_idx) {
        if (evaluate(program, program.operands[node.first + operand_idx], instance) == want)
          return want;
      }
      return !want;
    }
    case NodeKind::kNot:
      return !evaluate(program, node.first, instance);
  }
  return false;
}

}  // namespace

Result<Query> Query::parse(std::string_view text) {
  auto program = std::make_shared<Program>();
  program->text = std::string(text);
  Parser parser(program->text, *program);
  if (auto status = parser.parse(); !status) return std::unexpected(std::move(status.error()));
  return Query(std::move(program));
}

bool Query::matches(const ContainerInstance& instance) const {
  return evaluate(*program_, program_->root, instance);
}

bool Query::depends_on_tasks() const {
  return program_->depends_on_tasks;
}

std::string_view Query::text() const {
  return program_->text;
}

}  // namespace wharf::scheduler

// Minimal JSON reader for manifest.json (objects, arrays, strings, numbers, booleans, null).
// Enough for the runner's input contract; no dependency, no vendored library.
#pragma once

#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgeprune {

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  const Json& at(const std::string& key) const {
    if (kind != Kind::Object) throw std::runtime_error("expected an object holding '" + key + "'");
    auto it = object.find(key);
    if (it == object.end()) throw std::runtime_error("missing field '" + key + "'");
    return it->second;
  }
  bool has(const std::string& key) const { return kind == Kind::Object && object.count(key) > 0; }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}

  Json parse() {
    Json v = value();
    ws();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  const std::string& s_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("invalid JSON at byte " + std::to_string(i_) + ": " + what);
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(const char* word) {
    for (const char* p = word; *p; ++p, ++i_)
      if (i_ >= s_.size() || s_[i_] != *p) fail(std::string("expected ") + word);
  }

  Json value() {
    char c = peek();
    Json v;
    if (c == '{') {
      v.kind = Json::Kind::Object;
      ++i_;
      if (peek() == '}') { ++i_; return v; }
      while (true) {
        if (peek() != '"') fail("expected a key");
        std::string key = str();
        if (peek() != ':') fail("expected ':'");
        ++i_;
        v.object[key] = value();
        char d = peek();
        ++i_;
        if (d == '}') break;
        if (d != ',') fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      v.kind = Json::Kind::Array;
      ++i_;
      if (peek() == ']') { ++i_; return v; }
      while (true) {
        v.array.push_back(value());
        char d = peek();
        ++i_;
        if (d == ']') break;
        if (d != ',') fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      v.kind = Json::Kind::String;
      v.string = str();
    } else if (c == 't') {
      expect("true"); v.kind = Json::Kind::Bool; v.boolean = true;
    } else if (c == 'f') {
      expect("false"); v.kind = Json::Kind::Bool;
    } else if (c == 'n') {
      expect("null");
    } else {
      const char* start = s_.c_str() + i_;
      char* end = nullptr;
      v.number = std::strtod(start, &end);
      if (end == start) fail("unexpected character");
      v.kind = Json::Kind::Number;
      i_ += static_cast<size_t>(end - start);
    }
    return v;
  }

  std::string str() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      char c = s_[i_++];
      if (c == '"') break;
      if (c != '\\') { out += c; continue; }
      if (i_ >= s_.size()) fail("bad escape");
      char e = s_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {  // keep ASCII, replace the rest (class names are shown, never matched)
          if (i_ + 4 > s_.size()) fail("bad \\u escape");
          unsigned long code = std::strtoul(s_.substr(i_, 4).c_str(), nullptr, 16);
          out += code < 0x80 ? static_cast<char>(code) : '?';
          i_ += 4;
          break;
        }
        default: out += e;
      }
    }
    return out;
  }
};

inline Json parse_json(const std::string& text) { return JsonParser(text).parse(); }

}  // namespace edgeprune

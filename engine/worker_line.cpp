#include "engine/worker_line.h"

#include <string>

#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace orch::engine {

namespace {

// As deep as a protocol message may nest (mcp/jsonrpc.h): a result goes out
// inside a getResult reply.
constexpr std::size_t kMaxDepth = 128;

WorkerLine malformed(std::string why) {
  WorkerLine out;
  out.kind = WorkerLine::Kind::Malformed;
  out.message = std::move(why);
  return out;
}

}  // namespace

WorkerLine parse_worker_line(std::string_view line, std::string_view task_id) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return {};
  if (json_nests_deeper_than(line, kMaxDepth)) {
    return malformed("a line that nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return malformed("a line that is not JSON");
  if (!j.is_object()) return malformed("a line that is not a JSON object");
  auto id = j.find("id");
  if (id == j.end() || !id->is_string() || id->get_ref<const std::string&>() != task_id) {
    return malformed("a line without this task's id");
  }
  WorkerLine out;
  if (auto p = j.find("progress"); p != j.end()) {
    if (!p->is_object()) return malformed("progress is not an object");
    out.kind = WorkerLine::Kind::Progress;
    if (auto c = p->find("current"); c != p->end() && c->is_number()) out.progress.current = c->get<double>();
    if (auto t = p->find("total"); t != p->end() && t->is_number()) out.progress.total = t->get<double>();
    if (auto m = p->find("message"); m != p->end() && m->is_string()) out.progress.message = m->get<std::string>();
    return out;
  }
  if (auto r = j.find("result"); r != j.end()) {
    out.kind = WorkerLine::Kind::Result;
    out.result_json = r->dump();
    return out;
  }
  if (auto e = j.find("error"); e != j.end()) {
    out.kind = WorkerLine::Kind::Error;
    if (e->is_object()) {
      if (auto m = e->find("message"); m != e->end() && m->is_string()) {
        out.message = m->get<std::string>();
        return out;
      }
    }
    out.message = e->dump();
    return out;
  }
  return malformed("a line with neither progress, result nor error");
}

}  // namespace orch::engine

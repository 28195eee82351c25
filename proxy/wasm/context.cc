#include "proxy/wasm/context.h"

#include <utility>
#include <vector>

namespace proxy_wasm {

StreamContext::~StreamContext() = default;

FilterHeadersStatus StreamContext::OnRequestHeaders(uint32_t, bool) {
  return FilterHeadersStatus::kContinue;
}
FilterDataStatus StreamContext::OnRequestBody(size_t, bool) { return FilterDataStatus::kContinue; }
FilterHeadersStatus StreamContext::OnResponseHeaders(uint32_t, bool) {
  return FilterHeadersStatus::kContinue;
}
FilterDataStatus StreamContext::OnResponseBody(size_t, bool) {
  return FilterDataStatus::kContinue;
}
FilterStatus StreamContext::OnNewConnection() { return FilterStatus::kContinue; }
FilterStatus StreamContext::OnDownstreamData(size_t, bool) { return FilterStatus::kContinue; }
FilterStatus StreamContext::OnUpstreamData(size_t, bool) { return FilterStatus::kContinue; }
void StreamContext::OnDownstreamConnectionClose(PeerType) {}
void StreamContext::OnUpstreamConnectionClose(PeerType) {}
void StreamContext::OnLog() {}
void StreamContext::OnDone() {}

RootContext::~RootContext() = default;

bool RootContext::OnVmStart(size_t) { return true; }
bool RootContext::OnConfigure(size_t) { return true; }
void RootContext::OnTick() {}
void RootContext::OnGrpcReceive(uint32_t, size_t) {}
void RootContext::OnGrpcClose(uint32_t, uint32_t) {}
bool RootContext::OnDone() { return true; }

StreamContext* RootContext::FindStream(uint32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void RootContext::AddStream(std::unique_ptr<StreamContext> stream) {
  const uint32_t id = stream->id();
  streams_[id] = std::move(stream);
}

void RootContext::RemoveStream(uint32_t id) { streams_.erase(id); }

namespace {

struct Registered {
  std::string root_id;
  RootFactory factory;
};

std::vector<Registered>& Registry() {
  static std::vector<Registered>* registry = new std::vector<Registered>();
  return *registry;
}

}  // namespace

RootRegistration::RootRegistration(std::string_view root_id, RootFactory factory) {
  Registry().push_back({std::string(root_id), factory});
}

RootFactory FindRootFactory(std::string_view root_id) {
  RootFactory fallback = nullptr;
  for (const Registered& entry : Registry()) {
    if (entry.root_id == root_id) return entry.factory;
    if (entry.root_id.empty()) fallback = entry.factory;
  }
  return fallback;
}

}  // namespace proxy_wasm

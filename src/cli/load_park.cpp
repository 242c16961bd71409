// Park and restore by session length for `kvstream load` (an Engine of its own, RAM and optionally
// disk), and the arithmetic of how many sessions fit a KV budget.

#include "cli/defaults.h"
#include "cli/load.h"
#include "cli/market_input.h"
#include "runtime/engine.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvs::load {
namespace {

constexpr int kCellAlign = 256;

ParkRow ParkRepeatedly(Engine& e, SessionId id, int reps) {
    ParkRow row;
    row.n_tokens = e.Info(id)->n_tokens;
    for (int i = 0; i < reps; ++i) {
        (void)e.TakeEvents();
        Check(e.Park(id), "park");
        const ParkStats st = e.park_store().stats();
        row.blob_bytes = st.host_bytes + st.disk_bytes;
        row.on_disk = e.park_store().IsOnDisk(id);
        Check(e.Restore(id), "restore");
        KV_CHECK(e.Info(id)->n_cached == row.n_tokens, "a restored session lost tokens");
        for (const EngineEvent& ev : e.TakeEvents()) {
            if (ev.kind == EngineEvent::Kind::kParked) {
                row.park_ms.push_back(ev.ms);
            } else if (ev.kind == EngineEvent::Kind::kRestored) {
                row.restore_ms.push_back(ev.ms);
            }
        }
    }
    return row;
}

}  // namespace

// One session grown to each length in turn (ascending), parked and restored `park_reps` times
// at each. With `on_disk` the host budget is 1 byte, so every blob goes to park_dir.
void MeasureParking(const LoadOptions& o,
                    const std::string& model,
                    const std::vector<int>& lengths,
                    bool on_disk,
                    ParkResult& result) {
    EngineOptions eo;
    eo.model_path = model;
    eo.n_sessions = 1;
    eo.n_ctx_session = lengths.back();
    eo.n_threads = o.n_threads;
    eo.n_gpu_layers = o.n_gpu_layers;
    if (on_disk) {
        eo.park_host_bytes = 1;
        eo.park_dir = o.park_dir;
    }
    auto opened = Engine::Open(eo);
    Check(opened.status(), "opening the park engine");
    Engine& e = **opened;
    result.n_reserved_seqs = e.context().n_seq_max() - e.n_slots();
    auto created = e.CreateSession();  // holds BOS when the model wants one
    Check(created.status(), "creating the park session");
    const SessionId id = *created;
    const int n_start = e.Info(id)->n_tokens;
    const Tokens data = MarketTokens(e, std::max(0, lengths.back() - n_start));
    int n_done = 0;
    double fill_ms = 0;
    for (int length : lengths) {
        const int n_to = std::max(n_done, length - n_start);
        if (n_to > n_done) {
            const auto started = Clock::now();
            Check(e.AppendTokens(id, Tokens(data.begin() + n_done, data.begin() + n_to)).status(),
                  "filling the park session");
            fill_ms += MsBetween(started, Clock::now());
            n_done = n_to;
        }
        std::fprintf(stderr, "park: %d tokens, %s\n", n_start + n_done, on_disk ? "disk" : "RAM");
        result.rows.push_back(ParkRepeatedly(e, id, o.park_reps));
    }
    if (!on_disk && fill_ms > 0) {
        result.prefill_tokens_per_s = n_done / fill_ms * 1000;
    }
}

// ---- KV budget ----------------------------------------------------------------------------------

KvShape ReadKvShape(const std::string& model) {
    auto info = InspectModelFile(model);
    Check(info.status(), "reading the model header");
    if (info->n_head <= 0 || info->n_embd % info->n_head != 0) {
        throw std::runtime_error("the model header has no usable head count");
    }
    KvShape k;
    k.n_layer = info->n_layer;
    k.n_head_kv = info->n_head_kv;
    k.head_dim = info->n_embd / info->n_head;
    k.bytes_per_cell = std::int64_t{2} * k.n_layer * k.n_head_kv * k.head_dim * 2;
    return k;
}

std::int64_t SlotCells(int n_ctx) {
    const std::int64_t n = n_ctx;
    return (n + kCellAlign - 1) / kCellAlign * kCellAlign;
}

// Resident session slots for a budget: floor(budget / round_up(ctx, 256)) - reserved, capped by
// the sequences one context may hold.
std::int64_t SlotsFor(std::int64_t budget_cells, int n_ctx, int n_reserved) {
    const std::int64_t n = budget_cells / SlotCells(n_ctx) - n_reserved;
    return std::clamp<std::int64_t>(n, 0, kMaxSeqs - n_reserved);
}

}  // namespace kvs::load

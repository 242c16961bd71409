#pragma once

// Failures the engine must survive but cannot provoke from outside, injected by tests into a
// Context (engine/context.h) directly or through EngineOptions::test_faults. Engine thread only,
// like the Context that owns it. Zero (the default): no faults.

namespace kvs {

struct FaultPlan {
    int fail_decodes = 0;   // the next this many Decode() calls fail with `decode_rc`, running
                            // nothing (a valid outcome of every failing code)
    int decode_rc = -3;     // the llama_decode return code they report (DecodeStatus)
    int fail_restores = 0;  // the next this many RestoreSequence() calls refuse their blob
    int throw_decodes = 0;  // the next this many Decode() calls throw std::bad_alloc, running
                            // nothing (an exception escaping libllama or an allocation)
    // The Engine's Submit* call (appends and queries, counted together from 1) with this number
    // throws std::bad_alloc before changing anything: a command that throws (0: none).
    int throw_at_submit = 0;
};

}  // namespace kvs

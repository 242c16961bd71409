#pragma once
// Which of the server's own threads the caller is on, so that work can check it runs where its
// owner's contract says: the engine thread computes, the store's and the snapshot writer's
// threads write, and rendering responses (JSON, SSE) belongs to the HTTP side (the I/O threads,
// or any caller's thread). Each thread sets its role once, at its root.

#include <cstdint>

namespace kvs {

enum class ThreadRole : std::uint8_t {
    kOther,           // HTTP I/O threads, callers of the library, tests
    kEngine,          // runtime/runtime.h: the one thread that runs the Engine
    kStoreWriter,     // persist/store.h: the group commit
    kSnapshotWriter,  // persist/snapshot_writer.h
};

// Sets the calling thread's role (at the thread's root; a thread starts as kOther).
void SetThreadRole(ThreadRole role);

ThreadRole CurrentThreadRole();

// "other", "engine", "store writer", "snapshot writer".
const char* ThreadRoleName(ThreadRole role);

}  // namespace kvs

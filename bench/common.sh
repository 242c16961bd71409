# Shared by the bench/*.sh scripts (sourced, not run): the default model and the machine record.

# Sets `cache` and `model` (the Qwen2.5-0.5B shape twin, Q8_0), making the model once.
bench_default_model() {
  cache="${KVSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvstream}"
  model="$cache/models/qwen2.5-0.5b-q8_0.gguf"
  [ -f "$model" ] || build/kvstream make-model --shape qwen2.5-0.5b --type q8_0 --out "$model"
}

# Prints what a result depends on: machine, memory, load, threads ($1), model ($2), versions.
bench_machine_info() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB; threads: $1"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "model: $2 ($(du -m "$2" | cut -f1) MiB)"
  echo "kvstream: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "llama.cpp: 80fb11ac; $(build/kvstream --version | sed -n 's/^this machine: //p')"
}

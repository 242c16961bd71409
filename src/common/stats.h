#pragma once
// The one quantile rule of every benchmark and CLI report (a p99 means the same whichever command
// printed it). The server's histograms (common/metrics.h) estimate quantiles from buckets instead.

#include <vector>

namespace kvs {

// The q-quantile of `samples` (q in [0, 1], else KV_CHECK), by linear interpolation between the
// closest ranks: sort, h = (n - 1) * q, result = x[floor h] + (h - floor h) * (x[floor h + 1] -
// x[floor h]). This is numpy's default ("linear", Hyndman and Fan type 7): Quantile(v, 0) is the
// minimum, Quantile(v, 1) the maximum, one sample is every quantile. An empty list gives 0 (a
// report of no samples prints 0; callers that must tell "none" apart check empty() first).
// Samples must be finite. Takes a copy (it sorts); any thread.
double Quantile(std::vector<double> samples, double q);

// Quantile(samples, 0.5): the middle sample, or the mean of the two middle ones.
double Median(std::vector<double> samples);

// The arithmetic mean (0 for an empty list).
double Mean(const std::vector<double>& samples);

}  // namespace kvs

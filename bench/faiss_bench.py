#!/usr/bin/python3
"""The FAISS side of `make bench-serve` (bench/bench_serve.c runs it in the same run, on the same
vectors): top-k by inner product with IndexFlatIP (exact) and IndexScalarQuantizer QT_8bit (SQ8).

usage: faiss_bench.py FILE K THREADS SINGLE
  FILE: written by bench_serve: int32 n, d, nq, then n*d float32 items, nq*d float32 queries.
Prints one line per figure, "faiss <method> <figure> <value>", and writes FILE.flat_ids (int64,
nq*K: IndexFlatIP's answers, which bench_serve compares with its own exact search)."""
import sys
import time

import numpy as np

import faiss


def single_queries(index, xq, k, count, name):
    """One query at a time: p50/p99 wall-clock latency and the process CPU time per query."""
    lat = []
    c0 = time.process_time()
    for q in range(count):
        t0 = time.perf_counter()
        index.search(xq[q:q + 1], k)
        lat.append(time.perf_counter() - t0)
    print("faiss %s cpu_ms %.3f" % (name, (time.process_time() - c0) * 1e3 / count))
    lat = np.array(lat) * 1e3
    print("faiss %s p50_ms %.3f" % (name, np.percentile(lat, 50)))
    print("faiss %s p99_ms %.3f" % (name, np.percentile(lat, 99)))


def main():
    path, k, threads, single = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    faiss.omp_set_num_threads(threads)
    hdr = np.fromfile(path, dtype=np.int32, count=3)
    n, d, nq = int(hdr[0]), int(hdr[1]), int(hdr[2])
    data = np.memmap(path, dtype=np.float32, mode="r", offset=12, shape=(n * d + nq * d,))
    xb = np.ascontiguousarray(data[: n * d].reshape(n, d))
    xq = np.ascontiguousarray(data[n * d:].reshape(nq, d))
    print("faiss version %s threads %d" % (faiss.__version__, threads), flush=True)

    flat = faiss.IndexFlatIP(d)
    flat.add(xb)
    t0 = time.perf_counter()
    _, gt = flat.search(xq, k)
    t_batch = time.perf_counter() - t0
    gt.astype(np.int64).tofile(path + ".flat_ids")
    single_queries(flat, xq, k, min(single, nq), "flat")
    print("faiss flat batch_qps %.1f" % (nq / t_batch))
    print("faiss flat recall 1.0000")
    del flat

    t0 = time.perf_counter()
    sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(xb)
    sq.add(xb)
    print("faiss sq8 build_s %.2f" % (time.perf_counter() - t0))
    t0 = time.perf_counter()
    _, ids = sq.search(xq, k)
    t_batch = time.perf_counter() - t0
    rec = np.mean([len(set(ids[q]) & set(gt[q])) / k for q in range(nq)])
    single_queries(sq, xq, k, min(single, nq), "sq8")
    print("faiss sq8 batch_qps %.1f" % (nq / t_batch))
    print("faiss sq8 recall %.4f" % rec, flush=True)


if __name__ == "__main__":
    main()

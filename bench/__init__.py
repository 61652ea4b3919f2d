"""`make bench`: measured latency, throughput, tick cost and memory, each beside its baseline."""

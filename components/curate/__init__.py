"""Curation: raw JSONL / Parquet / text → quarantined bad records, normalized, filtered, deduplicated Parquet,
a tokenizer trained on the result, and packed token shards that pretraining reads."""

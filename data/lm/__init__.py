"""Language-model corpora: documents -> tokenizer -> token shards -> blocks."""

package testshared

// FuzzLines are fuzz seeds in the line shapes the default detectors and the
// parsers know (bracketed levels with ANSI colours, uvicorn, logfmt, JSON,
// Python logging, loguru, syslog, epoch stamps) and a few broken ones
// (impossible dates, invalid UTF-8, a trailing CR), shared by the fuzz
// targets of logql/log and ingest/stages.
var FuzzLines = []string{
	"[INFO] 2024-12-17T00:00:08Z Audio sample received seq=14",
	"[\x1b[32mDEBUG\x1b[0m] 2026-11-23T20:36:51Z tokenizer",
	"INFO:     127.0.0.1:59044 - \"POST /inference_instruct HTTP/1.1\" 200 OK",
	"ts=2024-12-17T00:00:09.061Z level=info msg=\"tts done\"",
	`{"ts":"2024-12-17T00:00:55.734175678Z","level":"error","queue":{"depth":3}}`,
	"2024-12-17 14:30:52,123 - cosyvoice - INFO - msg",
	"2024-12-17 14:30:52.123 | INFO | mod:fn:42 - msg",
	"Dec 17 14:30:52 host x",
	"1734393607123 x",
	"2024-12-17T14:30:52,5+08:00",
	"2024-02-30 14:30:52",
	"\xff\xfe[ERROR]\r",
}

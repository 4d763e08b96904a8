package audit

// ReadChunks exposes the reader of InfluxQL answers to the benchmarks,
// which page through InfluxDB by time to compare with chunking.
var ReadChunks = readChunks

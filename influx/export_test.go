package influx

// Point exposes point construction to the external tests.
var Point = point

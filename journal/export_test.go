package journal

// WrongLastSequence exposes wrongLastSequence to the tests.
var WrongLastSequence = wrongLastSequence

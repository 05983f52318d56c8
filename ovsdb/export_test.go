package ovsdb

// CheckEndpoint exposes checkEndpoint to the tests.
var CheckEndpoint = checkEndpoint

package residents

// Unexported functions the external tests check directly.
var (
	PublicAddr    = publicAddr
	PrivateHost   = privateHost
	RefusePrivate = refusePrivate
)

// Build module for heketi and heketi-cli (see README.md). Heketi v10 has no go.mod
// of its own (it vendored with glide), so it enters as an +incompatible module and
// the versions of its dependencies are pinned here instead of by its glide.lock.
module heketi-provisioner.test/peers/heketi

go 1.26.0

// Heketi v10.3.0 was built with Go 1.15; keep the oldest GODEBUG defaults Go offers.
godebug default=go1.20

tool (
	github.com/heketi/heketi
	github.com/heketi/heketi/client/cli/go
)

// Pinned by hand; the second block is what `go mod tidy` resolved from these.
// (`// indirect` only because the packages are used through the tool lines.)
require (
	// As Heketi's glide.yaml/glide.lock. The module proxy here refuses a bare
	// commit hash, so heketi/tests and godbc are the canonical pseudo-versions of
	// the glide.lock commits. ozzo-validation stays at tidy's v3.6.0
	// (API-compatible with glide.yaml's v3.3): the checksum database reached here
	// has no entry for v3.3.0.
	github.com/auth0/go-jwt-middleware v1.0.0 // indirect
	github.com/boltdb/bolt v1.3.1 // indirect
	github.com/form3tech-oss/jwt-go v3.2.2+incompatible // indirect
	// v10.4.0 (the last release) is refused by the module proxy here (403 "This
	// module version is not available"); v10.3.0 is the newest it serves.
	github.com/heketi/heketi v10.3.0+incompatible // indirect
	github.com/heketi/tests v0.0.0-20151005000721-f3775cbcefd6 // indirect
	github.com/lpabon/godbc v0.0.0-20140613165803-9577782540c1 // indirect
	// glide.lock's reflect2 (94122c33, before v1.0.2) crashes on Go >= 1.18.
	github.com/modern-go/reflect2 v1.0.2 // indirect
	// Heketi's glide.lock pins kubernetes-1.15.3 (only its kubeexec executor,
	// unused with the mock executor, needs it). Heketi calls client-go without the
	// context argument that client-go added in v0.18, so stay on v0.17.
	k8s.io/api v0.17.5 // indirect
	k8s.io/apimachinery v0.17.5 // indirect
	k8s.io/client-go v0.17.5 // indirect
)

require (
	github.com/asaskevich/govalidator v0.0.0-20230301143203-a9d515a09cc2 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/docker/spdystream v0.0.0-20160310174837-449fdfce4d96 // indirect
	github.com/go-ozzo/ozzo-validation v3.6.0+incompatible // indirect
	github.com/gogo/protobuf v1.2.2-0.20190723190241-65acae22fc9d // indirect
	github.com/golang/protobuf v1.5.0 // indirect
	github.com/google/gofuzz v1.0.0 // indirect
	github.com/googleapis/gnostic v0.0.0-20170729233727-0c5108395e2d // indirect
	github.com/gorilla/mux v1.7.4 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/json-iterator/go v1.1.12 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/urfave/negroni v1.0.0 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/oauth2 v0.37.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/term v0.46.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	golang.org/x/time v0.0.0-20190308202827-9d24e82272b4 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/inf.v0 v0.9.1 // indirect
	gopkg.in/yaml.v2 v2.2.8 // indirect
	k8s.io/klog v1.0.0 // indirect
	k8s.io/utils v0.0.0-20191114184206-e782cd3c129f // indirect
	sigs.k8s.io/yaml v1.1.0 // indirect
)

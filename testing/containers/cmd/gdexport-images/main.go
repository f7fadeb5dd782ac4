// Command gdexport-images builds the images of deployments/docker-compose.yml
// locally, without a registry, with the machinery of the container tests:
// each image FROM scratch around a static binary, tagged by a hash of its
// inputs and built only when that tag is missing, then tagged with the
// stable name the compose file uses (gdexport/<name>:local).
//
//	go run ./testing/containers/cmd/gdexport-images            # all four
//	go run ./testing/containers/cmd/gdexport-images gdexport   # only gdexport's
//
// Run it from the repository (make image, make images).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"slices"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/gdexport/gdexport/testing/containers"
)

// stderrLog is containers.Logger on standard error.
type stderrLog struct{}

func (stderrLog) Logf(format string, args ...any) { log.Printf(format, args...) }

// image is one image this command builds: its name and how its
// hash-tagged reference is obtained (built when missing).
type image struct {
	name  string
	build func(ctx context.Context) (string, error)
}

// images are the images this command knows.
var images = []image{
	{"gdexport", func(ctx context.Context) (string, error) { return containers.GdexportImage(ctx, stderrLog{}) }},
	{"nats-server", tool(containers.NATSTool)},
	{"minio", tool(containers.MinIOTool)},
	{"local-kms", tool(containers.LocalKMSTool)},
}

func tool(t containers.Tool) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return containers.Image(ctx, stderrLog{}, t) }
}

func main() {
	log.SetFlags(0)
	ctx := context.Background()
	want := os.Args[1:]
	for _, w := range want {
		if !slices.ContainsFunc(images, func(i image) bool { return i.name == w }) {
			fmt.Fprintf(os.Stderr, "gdexport-images: unknown image %q: expected gdexport, nats-server, minio or local-kms\n", w)
			os.Exit(2)
		}
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		log.Fatalf("gdexport-images: docker client (is the Docker engine running?): %v", err)
	}
	defer cli.Close()
	for _, img := range images {
		if len(want) > 0 && !slices.Contains(want, img.name) {
			continue
		}
		ref, err := img.build(ctx)
		if err != nil {
			log.Fatalf("gdexport-images: %s: %v", img.name, err)
		}
		local := "gdexport/" + img.name + ":local"
		if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: ref, Target: local}); err != nil {
			log.Fatalf("gdexport-images: tag %s as %s: %v", ref, local, err)
		}
		fmt.Printf("%-28s %s\n", local, ref)
	}
}

// The demo's app: a small web server, compiled in the pipeline's script step and laid onto a base
// image by PrivateAcrBuildImage@1. `server --version` prints its version and exits.
package main

import (
	"embed"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"os"
)

const version = "1.0.0"

//go:embed site
var site embed.FS

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Printf("demo web %s\n", version)
		return
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	pages, err := fs.Sub(site, "site")
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/", http.FileServerFS(pages))
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	log.Printf("demo web %s listening on :%s", version, port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}

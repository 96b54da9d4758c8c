// fakekaniko stands in for the kaniko executor in the build-image tests. It reports what it saw inside
// the container (its arguments, capabilities, no-new-privileges, which mounts are read-only, the Docker
// config it was given) as one JSON line on stderr, and pushes a tiny real image to --destination with
// the credentials from /kaniko/.docker/config.json, writing the pushed digest to --digest-file.
// With --no-push and --tar-path it writes the image as a docker-archive tarball instead (what kaniko's
// --tar-path writes). The image's one layer holds fakekaniko.txt, naming the sha256 of the Dockerfile read.
// --build-arg=FAKE_MODE=fail|nodigest|baddigest makes it misbehave on purpose. In an image whose
// environment sets FAKEKANIKO_BUILD=1, --tar-path builds the smallest Dockerfiles for real instead
// (tarball.go), for the conformance tests.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

const dockerConfig = "/kaniko/.docker/config.json"

type report struct {
	Argv             []string          `json:"argv"`
	UID              int               `json:"uid"`
	CapEff           string            `json:"cap_eff"`
	NoNewPrivs       string            `json:"no_new_privs"`
	Env              []string          `json:"env"`
	WorkspaceWrite   string            `json:"workspace_write_error"`
	ConfigWrite      string            `json:"config_write_error"`
	DockerfileBytes  int               `json:"dockerfile_bytes"`
	AuthKeys         map[string]string `json:"auth_sha256"`
	MirrorStatus     int               `json:"mirror_status"`
	DestinationCheck int               `json:"destination_status"`
	Pushed           string            `json:"pushed"`
	Error            string            `json:"error,omitempty"`
}

func status(field string) string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			return strings.TrimSpace(strings.TrimPrefix(line, field+":"))
		}
	}
	return ""
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type registry struct {
	base string
	auth string
}

func (r registry) do(method, url string, body []byte, contentType string) (*http.Response, error) {
	if !strings.HasPrefix(url, "http") {
		url = r.base + url
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if r.auth != "" {
		req.Header.Set("Authorization", "Basic "+r.auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return http.DefaultClient.Do(req)
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r registry) uploadBlob(repo string, data []byte) (string, error) {
	resp, err := r.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, "")
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		return "", fmt.Errorf("start upload: HTTP %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = r.base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	digest := digestOf(data)
	resp, err = r.do("PUT", loc+sep+"digest="+digest, data, "application/octet-stream")
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return "", fmt.Errorf("finish upload: HTTP %d", resp.StatusCode)
	}
	return digest, nil
}

// image is the tiny image fakekaniko builds: one uncompressed layer with fakekaniko.txt, and its config.
func image(content []byte) (layer *bytes.Buffer, config []byte) {
	layer = &bytes.Buffer{}
	tw := tar.NewWriter(layer)
	tw.WriteHeader(&tar.Header{Name: "fakekaniko.txt", Mode: 0o644, Size: int64(len(content))})
	tw.Write(content)
	tw.Close()
	config, _ = json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(layer.Bytes())}},
	})
	return layer, config
}

// writeTarball writes the image as a docker-archive (manifest.json, the config, the layer), as --tar-path does.
func writeTarball(path, name string, content []byte) error {
	layer, config := image(content)
	configName := digestOf(config)
	layerName := strings.TrimPrefix(digestOf(layer.Bytes()), "sha256:") + ".tar"
	manifest, _ := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{name}, "Layers": []string{layerName}}})
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, entry := range []struct {
		name string
		data []byte
	}{{configName, config}, {layerName, layer.Bytes()}, {"manifest.json", manifest}} {
		tw.WriteHeader(&tar.Header{Name: entry.name, Mode: 0o644, Size: int64(len(entry.data))})
		tw.Write(entry.data)
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func push(r registry, repo, tag string, content []byte) (string, error) {
	layer, config := image(content)
	layerDigest, err := r.uploadBlob(repo, layer.Bytes())
	if err != nil {
		return "", err
	}
	configDigest, err := r.uploadBlob(repo, config)
	if err != nil {
		return "", err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layer.Len()}},
	})
	resp, err := r.do("PUT", "/v2/"+repo+"/manifests/"+tag, manifest, "application/vnd.oci.image.manifest.v1+json")
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return "", fmt.Errorf("put manifest: HTTP %d", resp.StatusCode)
	}
	digest := digestOf(manifest)
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
		return "", fmt.Errorf("registry says %s, sent %s", got, digest)
	}
	return digest, nil
}

func main() {
	rep := report{Argv: os.Args[1:], UID: os.Getuid(), Env: os.Environ(), AuthKeys: map[string]string{}}
	rep.CapEff = status("CapEff")
	rep.NoNewPrivs = status("NoNewPrivs")
	flags := map[string]string{}
	buildArgs := map[string]string{}
	for _, arg := range os.Args[1:] {
		key, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if key == "build-arg" {
			k, v, _ := strings.Cut(value, "=")
			buildArgs[k] = v
			continue
		}
		flags[key] = value
	}
	if f, err := os.Create("/workspace/.fakekaniko-probe"); err == nil {
		f.Close()
		os.Remove("/workspace/.fakekaniko-probe")
	} else {
		rep.WorkspaceWrite = err.Error()
	}
	if f, err := os.OpenFile(dockerConfig, os.O_WRONLY, 0); err == nil {
		f.Close()
	} else {
		rep.ConfigWrite = err.Error()
	}
	content := "built by fakekaniko\n"
	if data, err := os.ReadFile(strings.TrimPrefix(flags["dockerfile"], "")); err == nil {
		rep.DockerfileBytes = len(data)
		content += "dockerfile " + digestOf(data) + "\n"
	}
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if data, err := os.ReadFile(dockerConfig); err == nil {
		json.Unmarshal(data, &cfg)
	}
	for host, entry := range cfg.Auths {
		sum := sha256.Sum256([]byte(entry.Auth))
		rep.AuthKeys[host] = hex.EncodeToString(sum[:])
	}
	if mirror := flags["registry-mirror"]; mirror != "" {
		if resp, err := http.Get("http://" + mirror + "/v2/"); err == nil {
			rep.MirrorStatus = resp.StatusCode
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		} else {
			rep.Error = "mirror: " + err.Error()
		}
	}
	mode := buildArgs["FAKE_MODE"]
	dest := flags["destination"]
	host, rest, _ := strings.Cut(dest, "/")
	repo, tag, _ := strings.Cut(rest, ":")
	scheme := "https://"
	if _, insecure := flags["insecure"]; insecure {
		scheme = "http://"
	}
	reg := registry{base: scheme + host, auth: cfg.Auths[host].Auth}
	_, noPush := flags["no-push"]
	if !noPush {
		if resp, err := reg.do("GET", "/v2/", nil, ""); err == nil {
			rep.DestinationCheck = resp.StatusCode
			resp.Body.Close()
		}
	}
	exit := 0
	if tarPath, ok := flags["tar-path"]; ok && os.Getenv("FAKEKANIKO_BUILD") == "1" {
		// a real (if tiny) build: see tarball.go
		context := strings.TrimPrefix(flags["context"], "dir://")
		if digest, err := buildTarball(flags["dockerfile"], context, tarPath, dest, mode, flags["registry-mirror"]); err != nil {
			rep.Error = "build: " + err.Error()
			fmt.Fprintf(os.Stderr, "error building image: %s\n", err)
			exit = 1
		} else if err := os.WriteFile(flags["digest-file"], []byte(digest), 0o644); err != nil {
			rep.Error = "digest file: " + err.Error()
			exit = 1
		}
	} else if mode == "fail" {
		rep.Error = "failing on purpose"
		exit = 3
	} else if noPush {
		if path := flags["tar-path"]; path != "" {
			if err := writeTarball(path, dest, []byte(content)); err != nil {
				rep.Error = "tar-path: " + err.Error()
				exit = 1
			}
		}
	} else if digest, err := push(reg, repo, tag, []byte(content)); err != nil {
		rep.Error = "push: " + errText(err)
		exit = 1
	} else {
		rep.Pushed = digest
		switch mode {
		case "nodigest":
		case "baddigest":
			os.WriteFile(flags["digest-file"], []byte("not-a-digest"), 0o644)
		default:
			if flags["digest-file"] == "" {
				break
			}
			if err := os.WriteFile(flags["digest-file"], []byte(digest), 0o644); err != nil {
				rep.Error = "digest file: " + err.Error()
				exit = 1
			}
		}
	}
	out, _ := json.Marshal(rep)
	fmt.Fprintf(os.Stderr, "FAKE-KANIKO-REPORT %s\n", out)
	os.Exit(exit)
}

// With FAKEKANIKO_PULL=1 in its environment, fakekaniko builds on a base image too (FROM NAME[:TAG] or
// FROM NAME[:TAG]@sha256:...): it reads the Docker Hub image NAME through --registry-mirror (plain HTTP),
// as kaniko reads docker.io's images through its mirror, checks every digest, and starts the image
// from the base's layers (uncompressed) and its config. So a conformance test can see that kaniko's
// side of a case took its base from the mirror it was given.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
)

var manifestTypes = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

type descriptor struct {
	MediaType string            `json:"mediaType"`
	Digest    string            `json:"digest"`
	Platform  map[string]string `json:"platform"`
}

type manifestDoc struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
}

// hubName splits a Docker Hub image into its repository (library/ added) and its tag or digest.
func hubName(image string) (string, string, error) {
	name := strings.TrimPrefix(strings.TrimPrefix(image, "docker.io/"), "index.docker.io/")
	ref := "latest"
	if at := strings.Index(name, "@"); at >= 0 {
		name, ref = name[:at], name[at+1:]
	}
	if colon := strings.LastIndex(name, ":"); colon > strings.LastIndex(name, "/") {
		if ref == "latest" {
			ref = name[colon+1:]
		}
		name = name[:colon]
	}
	first, _, _ := strings.Cut(name, "/")
	if strings.ContainsAny(first, ".:") && strings.Contains(name, "/") {
		return "", "", fmt.Errorf("fakekaniko pulls Docker Hub images only, not %s", image)
	}
	if !strings.Contains(name, "/") {
		name = "library/" + name
	}
	return name, ref, nil
}

func fetch(url string, accept []string, want string) ([]byte, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, "", err
	}
	for _, media := range accept {
		req.Header.Add("Accept", media)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != 200 {
		return nil, "", fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	if want != "" && digestOf(body) != want {
		return nil, "", fmt.Errorf("GET %s: the content's digest is %s", url, digestOf(body))
	}
	return body, resp.Header.Get("Content-Type"), nil
}

// pullBase reads the base through the mirror: its layers (uncompressed) and its config.
func pullBase(mirror, image string) ([][]byte, imageConfig, error) {
	var cfg imageConfig
	if mirror == "" {
		return nil, cfg, fmt.Errorf("FROM %s needs --registry-mirror", image)
	}
	repo, ref, err := hubName(image)
	if err != nil {
		return nil, cfg, err
	}
	base := "http://" + mirror + "/v2/" + repo
	want := ""
	if strings.HasPrefix(ref, "sha256:") {
		want = ref
	}
	body, _, err := fetch(base+"/manifests/"+ref, manifestTypes, want)
	if err != nil {
		return nil, cfg, err
	}
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, cfg, err
	}
	if len(doc.Manifests) > 0 { // an index: this machine's platform
		chosen := doc.Manifests[0]
		for _, m := range doc.Manifests {
			if m.Platform["architecture"] == runtime.GOARCH && m.Platform["os"] == "linux" {
				chosen = m
				break
			}
		}
		if body, _, err = fetch(base+"/manifests/"+chosen.Digest, manifestTypes, chosen.Digest); err != nil {
			return nil, cfg, err
		}
		doc = manifestDoc{}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, cfg, err
		}
	}
	configBytes, _, err := fetch(base+"/blobs/"+doc.Config.Digest, nil, doc.Config.Digest)
	if err != nil {
		return nil, cfg, err
	}
	var whole struct {
		Config imageConfig `json:"config"`
	}
	if err := json.Unmarshal(configBytes, &whole); err != nil {
		return nil, cfg, err
	}
	var layers [][]byte
	for _, layer := range doc.Layers {
		blob, _, err := fetch(base+"/blobs/"+layer.Digest, nil, layer.Digest)
		if err != nil {
			return nil, cfg, err
		}
		if strings.Contains(layer.MediaType, "gzip") {
			reader, err := gzip.NewReader(bytes.NewReader(blob))
			if err != nil {
				return nil, cfg, err
			}
			if blob, err = io.ReadAll(reader); err != nil {
				return nil, cfg, err
			}
		}
		layers = append(layers, blob)
	}
	return layers, whole.Config, nil
}

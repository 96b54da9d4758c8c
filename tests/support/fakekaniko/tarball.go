// With --tar-path, fakekaniko builds for real, but only the smallest Dockerfiles: FROM scratch (or a base
// through --registry-mirror with FAKEKANIKO_PULL=1, see pull.go), COPY of
// files and directories from the context, ENTRYPOINT, CMD, WORKDIR, USER, LABEL and ENV in their simplest
// forms. It writes a docker-archive tarball (manifest.json, config, one layer per COPY) the way kaniko's
// --tar-path does, and the manifest digest to --digest-file. Anything else fails with exit status 1 and
// says which instruction it cannot build. --build-arg=FAKE_MODE=wrongmode writes every file 0600, so the
// conformance comparison has a real difference to find.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

type imageConfig struct {
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	User       string            `json:"User,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

func jsonList(text string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		return nil, fmt.Errorf("only the JSON form is supported: %s", text)
	}
	return out, nil
}

func copyLayer(context, src, dst, mode string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	root := filepath.Join(context, filepath.Clean("/"+src))
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	write := func(name string, fi fs.FileInfo, full string) error {
		hdr := &tar.Header{Name: strings.TrimPrefix(name, "/"), Mode: int64(fi.Mode().Perm()), Format: tar.FormatPAX}
		if fi.IsDir() {
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return err
		}
		if mode == "wrongmode" {
			hdr.Mode = 0o600
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	}
	if !info.IsDir() {
		target := dst
		if strings.HasSuffix(dst, "/") {
			target = path.Join(dst, filepath.Base(root))
		}
		err = write(target, info, root)
	} else {
		var names []string
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && p != root {
				names = append(names, p)
			}
			return err
		})
		sort.Strings(names)
		for _, p := range names {
			if err != nil {
				break
			}
			fi, statErr := os.Stat(p)
			if statErr != nil {
				return nil, statErr
			}
			rel, _ := filepath.Rel(root, p)
			err = write(path.Join(dst, filepath.ToSlash(rel)), fi, p)
		}
	}
	if err != nil {
		return nil, err
	}
	tw.Close()
	return buf.Bytes(), nil
}

// buildTarball builds the Dockerfile into a docker-archive at tarPath; returns the manifest digest.
func buildTarball(dockerfile, context, tarPath, destination, mode, mirror string) (string, error) {
	file, err := os.Open(dockerfile)
	if err != nil {
		return "", err
	}
	defer file.Close()
	// kaniko (and buildah) give a FROM scratch image the default PATH
	cfg := imageConfig{Labels: map[string]string{}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	var layers [][]byte
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "FROM":
			if rest == "scratch" {
				break
			}
			if os.Getenv("FAKEKANIKO_PULL") != "1" {
				return "", fmt.Errorf("fakekaniko builds FROM scratch only, not FROM %s", rest)
			}
			base, baseCfg, err := pullBase(mirror, rest) // pull.go
			if err != nil {
				return "", fmt.Errorf("pulling the base %s: %w", rest, err)
			}
			layers, cfg = append(layers, base...), baseCfg
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
		case "COPY":
			parts := strings.Fields(rest)
			if len(parts) != 2 || strings.HasPrefix(parts[0], "--") {
				return "", fmt.Errorf("fakekaniko cannot build COPY %s", rest)
			}
			layer, err := copyLayer(context, parts[0], parts[1], mode)
			if err != nil {
				return "", err
			}
			layers = append(layers, layer)
		case "ENTRYPOINT":
			if cfg.Entrypoint, err = jsonList(rest); err != nil {
				return "", err
			}
		case "CMD":
			if cfg.Cmd, err = jsonList(rest); err != nil {
				return "", err
			}
		case "WORKDIR":
			cfg.WorkingDir = rest
		case "USER":
			cfg.User = rest
		case "ENV":
			cfg.Env = append(cfg.Env, strings.Replace(rest, " ", "=", 1))
		case "LABEL":
			k, v, _ := strings.Cut(rest, "=")
			cfg.Labels[k] = strings.Trim(v, `"`)
		default:
			return "", fmt.Errorf("fakekaniko cannot build the instruction %s", word)
		}
	}
	var diffIDs []string
	for _, layer := range layers {
		diffIDs = append(diffIDs, digestOf(layer))
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "config": cfg,
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	var names []string
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	put := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	for _, layer := range layers {
		name := strings.TrimPrefix(digestOf(layer), "sha256:") + ".tar"
		names = append(names, name)
		put(name, layer)
	}
	configName := strings.TrimPrefix(digestOf(config), "sha256:")
	put(configName, config)
	manifest, _ := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{destination}, "Layers": names}})
	put("manifest.json", manifest)
	tw.Close()
	if err := os.WriteFile(tarPath, out.Bytes(), 0o644); err != nil {
		return "", err
	}
	return digestOf(append(config, manifest...)), nil
}

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ovs-dlb/dlb/lb"
)

// Source delivers the desired groups: a file, or the controller.
type Source interface {
	// Run calls deliver with every new group set, checked (lb.CheckAll,
	// or lb.Check for each group and lb.CheckSet: the agent's edge, where
	// groups are parsed once), and its version (the controller's index;
	// 0 for a file), until ctx ends. An invalid set is reported and not
	// delivered, so what is installed stays as it was.
	Run(ctx context.Context, deliver func(groups []lb.Checked, version uint64)) error
}

// fileSource reads a groups file and watches it for changes.
type fileSource struct {
	path    string
	log     *slog.Logger
	refused func()
	// reader decodes again only the groups whose text changed.
	reader lb.FileReader
}

func (s *fileSource) load() ([]lb.Checked, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("read groups file: %w", err)
	}
	groups, err := s.reader.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return groups, nil
}

func (s *fileSource) Run(ctx context.Context, deliver func([]lb.Checked, uint64)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	// Watch the directory: editors and config tools replace files.
	if err := w.Add(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("watch %s: %w", s.path, err)
	}
	reload := func() {
		start := time.Now()
		groups, err := s.load()
		if err != nil {
			s.log.Error("groups file refused; keeping what is installed", "err", err)
			if s.refused != nil {
				s.refused()
			}
			return
		}
		s.log.Info("groups loaded", "file", s.path, "groups", len(groups), "took", time.Since(start))
		deliver(groups, 0)
	}
	reload()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events:
			if filepath.Clean(ev.Name) == filepath.Clean(s.path) {
				debounce = time.After(20 * time.Millisecond)
			}
		case err := <-w.Errors:
			s.log.Warn("watching groups file", "err", err)
		case <-debounce:
			reload()
		}
	}
}

package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrSameName is a rename to the name the container has.
var ErrSameName = errors.New("renaming a container to the name it has")

// Rename gives c another name, as `docker rename`, running or not: the
// name lives in its config alone, which nothing running reads again. The
// caller names c in its errors.
func (m *Manager) Rename(c *Container, name string) error {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		return errors.New("the new name is empty")
	}
	if name == c.Name {
		return fmt.Errorf("%s: %w", name, ErrSameName)
	}
	unlock, err := m.lockAll()
	if err != nil {
		return err
	}
	defer unlock()
	// Read again under the lock: the config on disk is the one to change.
	b, err := c.fs.ReadFile(c.file(configFile))
	if err != nil {
		return err
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("decoding %s: %w", configFile, err)
	}
	cfg.Name = name
	if err := m.pickName(&cfg); err != nil {
		return err
	}
	if err := writeJSON(c.fs, c.file(configFile), cfg); err != nil {
		return err
	}
	c.Name = name
	return nil
}

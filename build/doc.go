// Package build turns a Dockerfile and a context into an image in the
// store, as `docker build` does, for an unprivileged user. Parsing is
// BuildKit's own (frontend/dockerfile/parser, instructions, shell);
// .dockerignore is read with moby/patternmatcher. What each instruction
// does is ours:
//
//	instruction   effect on the image
//	-----------   --------------------------------------------------------------
//	FROM          starts a stage from a stored image (pulled when absent or with
//	              --pull), scratch, or an earlier stage; ARGs before it expand
//	              it; the base's ONBUILD triggers run first
//	RUN           runs the command in a build container over the stage's layers
//	              (container.Manager.RunStep); its changes become one layer
//	COPY, ADD     files of the context (or --from a stage or image) become one
//	              layer written directly as a tar: --chown (names read from the
//	              stage's /etc/passwd and /etc/group), --chmod, globs,
//	              directories, .dockerignore; ADD unpacks local tar archives
//	WORKDIR       sets the working directory; makes it (one small layer) when
//	              the stage lacks it, as BuildKit does
//	ENV, USER, CMD, ENTRYPOINT, LABEL, EXPOSE, VOLUME, STOPSIGNAL,
//	HEALTHCHECK, SHELL, ONBUILD, MAINTAINER
//	              change the config and add a history entry, no layer
//	ARG           declares a build argument: visible to later expansion and
//	              to RUN's environment, never stored in the image
//
// Each step that makes a layer is cached: its key is the chain of every
// earlier step's key, its instruction, the build arguments it sees and,
// for COPY and ADD, a hash of its sources' content (not their times). A
// cached step is an untagged image annotated with its key
// (image.AnnotationBuildCache): ordinary store content that `image prune`
// removes once no named image is made of its layers. With a timestamp (SOURCE_DATE_EPOCH or --timestamp) the new
// layers' times are clamped to it and the config's and history's times are
// it, so two stores build the same image id.
package build

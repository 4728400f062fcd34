"""The clarinet pipeline's steps as library functions: presets and the four steps
(prepare -> train -> eval -> sample) that the kfp components in `components/` call."""

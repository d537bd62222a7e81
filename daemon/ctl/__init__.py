"""kartuctl, the operator's tool: parser, control-socket client, offline answers, screens, words, report renderers."""

"""The React compatibility page: upstream's @coji/durably-react client, bundled with esbuild."""

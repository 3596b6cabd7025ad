/*
 * logml test harness: a PluginsService that, besides the (empty) module/plugin bundles,
 * loads a fixed list of plugin classes straight from the JVM classpath.
 *
 * Elastic publishes the Elasticsearch 8 server jar and its Netty4 module to Maven Central, but
 * not a distribution with a modules/ directory, so the HTTP layer (Netty4Plugin) has to be
 * handed to the node as a classpath plugin -- the same thing Elasticsearch's own test framework
 * (MockNode) does. It lives in org.elasticsearch.plugins because the pieces it needs
 * (loadPlugin, LoadedPlugin) are package-private; on the classpath that split package is fine.
 */
package org.elasticsearch.plugins;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import org.elasticsearch.Build;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;

public class LogmlClasspathPluginsService extends PluginsService {

    private final List<LoadedPlugin> all;

    public LogmlClasspathPluginsService(Settings settings, Environment environment, PluginsLoader loader,
                                        Collection<Class<? extends Plugin>> classpathPlugins) {
        super(settings, environment.configDir(), loader);
        List<LoadedPlugin> loaded = new ArrayList<>(super.plugins());
        for (Class<? extends Plugin> pluginClass : classpathPlugins) {
            Plugin plugin = loadPlugin(pluginClass, settings, environment.configDir());
            PluginDescriptor descriptor = new PluginDescriptor(
                pluginClass.getName(),                        // name
                "classpath plugin (logml test harness)",      // description
                "NA",                                         // version
                Build.current().version(),                    // elasticsearch version
                Integer.toString(Runtime.version().feature()),// java version
                pluginClass.getName(),                        // class name
                null,                                         // module name
                List.of(),                                    // extended plugins
                false, false, false, false);                  // native controller, licensed, modular, stable
            loaded.add(new LoadedPlugin(descriptor, plugin, pluginClass.getClassLoader()));
        }
        this.all = List.copyOf(loaded);
    }

    @Override
    protected List<LoadedPlugin> plugins() {
        // the super constructor may ask before our field is set
        return all == null ? super.plugins() : all;
    }
}

// The Android shell: the library module wrapping the core (`:sunstorm`) and the sample app
// (`:sample`). Build on a machine with the Android SDK (see docs/android.md):
//   ./build-jnilibs.sh && gradle :sample:installDebug
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "sunstorm-android"
include(":sunstorm", ":sample")

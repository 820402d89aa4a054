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
        google() // LiteRT and AndroidX live on Google Maven
        mavenCentral()
    }
}

rootProject.name = "a2bs-android-sample"
include(":engine", ":app")
